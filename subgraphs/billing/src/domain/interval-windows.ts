/**
 * Interval metering's windows (ARCHITECTURE.md, Usage contract; seed 004
 * P8): a long-lived resource is billed in windows of the length snapshotted
 * when it opened, anchored at its opening: window i is
 * [openedAt + i*W, openedAt + (i+1)*W). A window is billed in full once it
 * has ended; the close bills the whole seconds of the window it falls in and
 * takes back what was billed past it, so an interval costs exactly
 * floor(elapsed seconds) * quantity per second, however late its close is
 * processed.
 */

export interface IntervalShape {
  openedAt: Date;
  windowSeconds: number;
  /** Base units accrued per second held (GPUs of an allocation). */
  quantityPerSecond: bigint;
}

export interface WindowSpan {
  index: number;
  start: Date;
  end: Date;
}

/** What the close changes for one window: a missing window billed, or a billed one corrected. */
export interface CloseChange {
  index: number;
  kind: 'window' | 'close_adjustment';
  /** Base units: the window's target, or target minus billed (negative when billed past the close). */
  quantity: bigint;
}

const windowMs = (shape: Pick<IntervalShape, 'windowSeconds'>) => shape.windowSeconds * 1000;

export function windowSpan(shape: Pick<IntervalShape, 'openedAt' | 'windowSeconds'>, index: number): WindowSpan {
  const start = shape.openedAt.getTime() + index * windowMs(shape);
  return { index, start: new Date(start), end: new Date(start + windowMs(shape)) };
}

/** How many windows have ended by `now`: windows [0, n) are due. */
export function windowsEndedBy(shape: Pick<IntervalShape, 'openedAt' | 'windowSeconds'>, now: Date): number {
  const elapsed = now.getTime() - shape.openedAt.getTime();
  return elapsed <= 0 ? 0 : Math.floor(elapsed / windowMs(shape));
}

/** Base units of a full window. */
export function fullWindowQuantity(shape: Pick<IntervalShape, 'windowSeconds' | 'quantityPerSecond'>): bigint {
  return BigInt(shape.windowSeconds) * shape.quantityPerSecond;
}

/**
 * The windows an open interval owes at `now` after windows [0, nextWindow)
 * were billed, at most `limit` of them (the rest in a later round).
 */
export function dueWindows(shape: Pick<IntervalShape, 'openedAt' | 'windowSeconds'>, nextWindow: number, now: Date, limit: number): WindowSpan[] {
  const end = Math.min(windowsEndedBy(shape, now), nextWindow + limit);
  const due: WindowSpan[] = [];
  for (let index = nextWindow; index < end; index += 1) due.push(windowSpan(shape, index));
  return due;
}

/**
 * What each window is worth once the interval closed at `closedAt`: full
 * windows up to it, the whole seconds of the window it falls in, nothing
 * after. `windows` is how many windows are worth anything.
 */
export function closeTargets(shape: IntervalShape, closedAt: Date): { windows: number; target(index: number): bigint } {
  // A close before the opening (clocks disagree) bills nothing rather than a negative span.
  const elapsed = Math.max(0, closedAt.getTime() - shape.openedAt.getTime());
  const full = Math.floor(elapsed / windowMs(shape));
  const partialSeconds = Math.floor((elapsed - full * windowMs(shape)) / 1000);
  const partial = BigInt(partialSeconds) * shape.quantityPerSecond;
  return {
    windows: full + (partialSeconds > 0 ? 1 : 0),
    target: (index) => (index < full ? fullWindowQuantity(shape) : index === full ? partial : 0n),
  };
}

/**
 * The lines a close writes, given what each window has billed so far
 * (window index -> base units; windows without an entry were never billed):
 * a window line for each unbilled window worth something, an adjustment of
 * target minus billed for each billed window worth otherwise.
 */
export function closeChanges(shape: IntervalShape, closedAt: Date, billed: ReadonlyMap<number, bigint>): { changes: CloseChange[]; windows: number } {
  const { windows, target } = closeTargets(shape, closedAt);
  let last = windows;
  for (const index of billed.keys()) last = Math.max(last, index + 1);
  const changes: CloseChange[] = [];
  for (let index = 0; index < last; index += 1) {
    const worth = target(index);
    const already = billed.get(index);
    if (already === undefined) {
      if (worth > 0n) changes.push({ index, kind: 'window', quantity: worth });
    } else if (already !== worth) {
      changes.push({ index, kind: 'close_adjustment', quantity: worth - already });
    }
  }
  return { changes, windows };
}
