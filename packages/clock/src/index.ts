/**
 * Every time-based rule reads time through a Clock so tests can move it
 * instead of sleeping.
 */
export interface Clock {
  now(): Date;
  /** Milliseconds since the epoch; cheaper than now() on hot paths. */
  nowMs(): number;
}

export const systemClock: Clock = {
  now: () => new Date(),
  nowMs: () => Date.now(),
};

/** A clock that only moves when a test tells it to. */
export class ManualClock implements Clock {
  private currentMs: number;

  constructor(start: Date | number = Date.UTC(2026, 0, 1)) {
    this.currentMs = typeof start === 'number' ? start : start.getTime();
  }

  now(): Date {
    return new Date(this.currentMs);
  }

  nowMs(): number {
    return this.currentMs;
  }

  advance(ms: number): void {
    if (ms < 0) throw new RangeError('a clock only moves forward');
    this.currentMs += ms;
  }

  set(to: Date | number): void {
    this.currentMs = typeof to === 'number' ? to : to.getTime();
  }
}
