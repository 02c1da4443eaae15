import { NO_ALERTS, type BalanceAlertState } from '../data/balance-alerts-store.js';
import { decideBalanceAlerts, LOW_WARNING_REPEAT_MS } from './balance-alerts.js';

const t0 = new Date('2030-03-01T12:00:00.000Z');
const later = (ms: number) => new Date(t0.getTime() + ms);
const THRESHOLD = 1000n;

/** Runs balances through the rule one after another, as consecutive checks would; returns what each announced. */
function run(steps: readonly { balance: bigint; at: Date }[], start: BalanceAlertState = NO_ALERTS) {
  let state = start;
  return steps.map(({ balance, at }) => {
    const decision = decideBalanceAlerts(state, balance, THRESHOLD, at);
    state = decision.next;
    return decision.announcements.map((a) => `${a.event}:${a.reason}`);
  });
}

describe('the balance alert rule', () => {
  it('announces nothing while the balance stays above the threshold', () => {
    expect(decideBalanceAlerts(NO_ALERTS, 1001n, THRESHOLD, t0)).toEqual({ next: NO_ALERTS, announcements: [] });
  });

  it('warns once when the balance reaches the threshold, not on later checks while it stays low', () => {
    expect(
      run([
        { balance: 1000n, at: t0 },
        { balance: 900n, at: later(1_000) },
        { balance: 1n, at: later(LOW_WARNING_REPEAT_MS - 1) },
      ]),
    ).toEqual([['low_warning:crossed'], [], []]);
  });

  it('reminds 24 h after the last warning while still low, then waits another 24 h', () => {
    expect(
      run([
        { balance: 500n, at: t0 },
        { balance: 500n, at: later(LOW_WARNING_REPEAT_MS) },
        { balance: 400n, at: later(2 * LOW_WARNING_REPEAT_MS - 1) },
        { balance: 400n, at: later(2 * LOW_WARNING_REPEAT_MS) },
      ]),
    ).toEqual([['low_warning:crossed'], ['low_warning:still_low'], [], ['low_warning:still_low']]);
  });

  it('warns again on the next crossing once the balance rose above the threshold, even within 24 h', () => {
    expect(
      run([
        { balance: 500n, at: t0 },
        { balance: 1001n, at: later(1_000) },
        { balance: 999n, at: later(2_000) },
      ]),
    ).toEqual([['low_warning:crossed'], [], ['low_warning:crossed']]);
  });

  it('announces depletion once per crossing to zero or below, after the low warning', () => {
    expect(
      run([
        { balance: 0n, at: t0 },
        { balance: -50n, at: later(1_000) },
        { balance: 1n, at: later(2_000) },
        { balance: -1n, at: later(3_000) },
      ]),
    ).toEqual([['low_warning:crossed', 'depleted:crossed'], [], [], ['depleted:crossed']]);
  });

  it('never repeats a depletion notice, only the low warning after 24 h', () => {
    expect(
      run([
        { balance: -10n, at: t0 },
        { balance: -10n, at: later(LOW_WARNING_REPEAT_MS) },
      ]),
    ).toEqual([['low_warning:crossed', 'depleted:crossed'], ['low_warning:still_low']]);
  });

  it('does not repeat early when the clock is behind the last warning', () => {
    expect(run([{ balance: 10n, at: t0 }, { balance: 10n, at: later(-LOW_WARNING_REPEAT_MS) }])).toEqual([['low_warning:crossed'], []]);
  });

  it('counts every announcement in the version and keeps when each was made', () => {
    const start: BalanceAlertState = { ...NO_ALERTS, version: 7 };
    const { next } = decideBalanceAlerts(start, -1n, THRESHOLD, t0);
    expect(next).toEqual({ low: true, lowAnnouncedAt: t0, depleted: true, depletedAnnouncedAt: t0, version: 9 });
    const cleared = decideBalanceAlerts(next, 5000n, THRESHOLD, later(1_000)).next;
    expect(cleared).toEqual({ ...next, low: false, depleted: false });
  });
});
