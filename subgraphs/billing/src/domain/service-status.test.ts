import { statusAfterLedgerCheck } from './service-status.js';

describe('billing status after a ledger check', () => {
  const operational = { status: 'operational' as const, reason: null };

  it('degrades on a mismatch, naming the count', () => {
    expect(statusAfterLedgerCheck(operational, 1)).toEqual({
      status: 'degraded',
      reason: 'Ledger check: 1 mismatch between the balance read model and the ledger; run billing:verify',
    });
    expect(statusAfterLedgerCheck(operational, 3)?.reason).toMatch(/^Ledger check: 3 mismatches /);
  });

  it('changes nothing when the same mismatches are found again', () => {
    const degraded = statusAfterLedgerCheck(operational, 2)!;
    expect(statusAfterLedgerCheck(degraded, 2)).toBeNull();
  });

  it('names a new count when it changes', () => {
    const degraded = statusAfterLedgerCheck(operational, 2)!;
    expect(statusAfterLedgerCheck(degraded, 5)?.reason).toMatch(/^Ledger check: 5 mismatches /);
  });

  it('returns to operational after a clean check that follows its own degradation', () => {
    expect(statusAfterLedgerCheck(statusAfterLedgerCheck(operational, 1)!, 0)).toEqual(operational);
  });

  it('changes nothing when a clean check finds billing operational', () => {
    expect(statusAfterLedgerCheck(operational, 0)).toBeNull();
  });

  it('leaves a degradation with another reason to whoever set it', () => {
    expect(statusAfterLedgerCheck({ status: 'degraded', reason: 'Payments provider unreachable' }, 0)).toBeNull();
  });

  it('leaves a declared outage or maintenance standing', () => {
    expect(statusAfterLedgerCheck({ status: 'outage', reason: 'database failover' }, 4)).toBeNull();
    expect(statusAfterLedgerCheck({ status: 'maintenance', reason: 'upgrade' }, 0)).toBeNull();
  });
});
