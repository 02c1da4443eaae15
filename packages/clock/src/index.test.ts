import { ManualClock, systemClock } from './index.js';

describe('clock', () => {
  it('moves a manual clock only when told to, and only forward', () => {
    const clock = new ManualClock(new Date('2026-01-01T00:00:00Z'));
    expect(clock.now().toISOString()).toBe('2026-01-01T00:00:00.000Z');
    clock.advance(90_000);
    expect(clock.nowMs()).toBe(Date.parse('2026-01-01T00:01:30Z'));
    expect(() => clock.advance(-1)).toThrow(RangeError);
  });

  it('reads the system time from the system clock', () => {
    const before = Date.now();
    const now = systemClock.nowMs();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(Math.abs(systemClock.now().getTime() - now)).toBeLessThan(1000);
  });
});
