import { closeChanges, closeTargets, dueWindows, fullWindowQuantity, windowsEndedBy, windowSpan, type IntervalShape } from './interval-windows.js';

const openedAt = new Date('2026-03-01T10:00:00.250Z');
const hourly: IntervalShape = { openedAt, windowSeconds: 3600, quantityPerSecond: 8n };
const at = (ms: number) => new Date(openedAt.getTime() + ms);
const HOUR = 3_600_000;

/** What the windows add up to once the close's changes are applied to what was billed. */
function totalAfterClose(shape: IntervalShape, closedAt: Date, billed: Map<number, bigint>): bigint {
  let total = [...billed.values()].reduce((sum, quantity) => sum + quantity, 0n);
  for (const change of closeChanges(shape, closedAt, billed).changes) total += change.quantity;
  return total;
}

describe('interval windows', () => {
  it('anchors windows at the opening, milliseconds included', () => {
    expect(windowSpan(hourly, 0)).toEqual({ index: 0, start: openedAt, end: at(HOUR) });
    expect(windowSpan(hourly, 3)).toEqual({ index: 3, start: at(3 * HOUR), end: at(4 * HOUR) });
  });

  it('counts a window as ended only at its end', () => {
    expect(windowsEndedBy(hourly, at(-1))).toBe(0);
    expect(windowsEndedBy(hourly, openedAt)).toBe(0);
    expect(windowsEndedBy(hourly, at(HOUR - 1))).toBe(0);
    expect(windowsEndedBy(hourly, at(HOUR))).toBe(1);
    expect(windowsEndedBy(hourly, at(5 * HOUR + 10))).toBe(5);
  });

  it('lists the windows due after the billed ones, at most the limit', () => {
    expect(dueWindows(hourly, 0, at(2 * HOUR), 100).map((w) => w.index)).toEqual([0, 1]);
    expect(dueWindows(hourly, 2, at(2 * HOUR), 100)).toEqual([]);
    expect(dueWindows(hourly, 1, at(10 * HOUR), 3).map((w) => w.index)).toEqual([1, 2, 3]);
    expect(fullWindowQuantity(hourly)).toBe(3600n * 8n);
  });

  it('targets full windows before the close, whole seconds of the window it falls in, nothing after', () => {
    const { windows, target } = closeTargets(hourly, at(2 * HOUR + 90_999));
    expect(windows).toBe(3);
    expect([0, 1, 2, 3].map(target)).toEqual([28_800n, 28_800n, 90n * 8n, 0n]);
    // A close exactly on a boundary leaves no partial window.
    expect(closeTargets(hourly, at(2 * HOUR)).windows).toBe(2);
    // Under a second of use is worth nothing; a close before the opening too.
    expect(closeTargets(hourly, at(999)).windows).toBe(0);
    expect(closeTargets(hourly, at(-5_000)).windows).toBe(0);
  });

  it('bills the missing windows of a close processed in time', () => {
    const billed = new Map([[0, 28_800n]]);
    expect(closeChanges(hourly, at(HOUR + 30_000), billed)).toEqual({ changes: [{ index: 1, kind: 'window', quantity: 240n }], windows: 2 });
  });

  it('takes back what was billed past a close processed after two more windows', () => {
    const billed = new Map([
      [0, 28_800n],
      [1, 28_800n],
      [2, 28_800n],
    ]);
    // Closed 30 minutes and 1.5 s into window 0; windows 1 and 2 were billed before the close arrived.
    expect(closeChanges(hourly, at(1_801_500), billed)).toEqual({
      changes: [
        { index: 0, kind: 'close_adjustment', quantity: 1_801n * 8n - 28_800n },
        { index: 1, kind: 'close_adjustment', quantity: -28_800n },
        { index: 2, kind: 'close_adjustment', quantity: -28_800n },
      ],
      windows: 1,
    });
  });

  it('comes to floor(elapsed seconds) * quantity per second whatever was billed before the close', () => {
    const shapes: IntervalShape[] = [hourly, { openedAt, windowSeconds: 60, quantityPerSecond: 1n }, { openedAt, windowSeconds: 7, quantityPerSecond: 3n }];
    for (const shape of shapes) {
      for (const elapsedMs of [0, 999, 1_000, 59_999, 60_000, 3 * HOUR + 1_234, 7 * HOUR]) {
        for (const billedWindows of [0, 1, 3, 12]) {
          const billed = new Map(Array.from({ length: billedWindows }, (_, index) => [index, fullWindowQuantity(shape)] as const));
          expect({ shape: shape.windowSeconds, elapsedMs, billedWindows, total: totalAfterClose(shape, at(elapsedMs), billed) }).toEqual({
            shape: shape.windowSeconds,
            elapsedMs,
            billedWindows,
            total: BigInt(Math.floor(elapsedMs / 1000)) * shape.quantityPerSecond,
          });
        }
      }
    }
  });
});
