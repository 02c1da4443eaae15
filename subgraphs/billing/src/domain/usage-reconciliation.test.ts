import type { WindowCounts } from '../data/usage-reconciliation-store.js';
import { statusAfterUsageReconciliation } from './usage-drift-status.js';
import { driftReasonsOf } from './usage-reconciliation.js';

describe('the drift reasons of a window', () => {
  const clean: WindowCounts = {
    product: 'tokenfactory',
    organizationId: 'org',
    unitId: 'token_output',
    windowStart: new Date('2025-01-01T10:00:00Z'),
    windowEnd: new Date('2025-01-01T11:00:00Z'),
    reportedCount: 2,
    reportedQuantity: 5n,
    ingestedCount: 2,
    ingestedQuantity: 5n,
    ratedCount: 2,
    postedCount: 2,
  };

  it('finds none when reported, ingested, rated and posted agree, or when nothing was reported', () => {
    expect(driftReasonsOf(clean)).toEqual([]);
    expect(driftReasonsOf({ ...clean, reportedCount: null, reportedQuantity: null })).toEqual([]);
  });

  it('names a reported count or quantity other than ingested', () => {
    expect(driftReasonsOf({ ...clean, reportedCount: 3 })).toEqual(['reported_ne_ingested']);
    expect(driftReasonsOf({ ...clean, reportedQuantity: 6n })).toEqual(['reported_ne_ingested']);
  });

  it('names unrated and unposted usage, every reason at once', () => {
    expect(driftReasonsOf({ ...clean, reportedCount: 3, ratedCount: 1, postedCount: 0 })).toEqual(['reported_ne_ingested', 'unrated', 'rated_ne_posted']);
  });
});

describe('billing status after usage reconciliation', () => {
  const operational = { status: 'operational' as const, reason: null };

  it('degrades while windows drift, naming how many, and announces a changed count only', () => {
    const degraded = statusAfterUsageReconciliation(operational, 1)!;
    expect(degraded).toEqual({
      status: 'degraded',
      reason: 'Usage reconciliation: 1 usage window where reported, ingested, rated and posted usage disagree; run billing:reconcile',
    });
    expect(statusAfterUsageReconciliation(degraded, 1)).toBeNull();
    expect(statusAfterUsageReconciliation(degraded, 4)?.reason).toMatch(/^Usage reconciliation: 4 usage windows /);
  });

  it('returns to operational once no window drifts, only from its own degradation', () => {
    expect(statusAfterUsageReconciliation(statusAfterUsageReconciliation(operational, 2)!, 0)).toEqual(operational);
    expect(statusAfterUsageReconciliation(operational, 0)).toBeNull();
    expect(statusAfterUsageReconciliation({ status: 'degraded', reason: 'Ledger check: 1 mismatch' }, 0)).toBeNull();
  });

  it('leaves another degradation, an outage or maintenance standing', () => {
    expect(statusAfterUsageReconciliation({ status: 'degraded', reason: 'Ledger check: 1 mismatch' }, 3)).toBeNull();
    expect(statusAfterUsageReconciliation({ status: 'outage', reason: 'database failover' }, 3)).toBeNull();
    expect(statusAfterUsageReconciliation({ status: 'maintenance', reason: 'upgrade' }, 0)).toBeNull();
  });
});
