import type pg from 'pg';
import type { Actor } from '@aifactory/contracts';
import { ServiceStatusStore, type ServiceStatusRecord } from '../data/service-status.js';
import { inTransaction } from '../data/transactions.js';
import type { UsageReconciliationStore } from '../data/usage-reconciliation-store.js';
import { BILLING_SERVICE, changeBillingStatus, type StatusChange } from './service-status.js';

/** Marks a degraded status that usage reconciliation set, so only reconciliation lifts it. */
const DRIFT_REASON = 'Usage reconciliation:';

/**
 * The status drifting usage windows leave billing in, or null when it
 * changes nothing: drift degrades billing, naming how many windows drift;
 * no drift lifts a degradation reconciliation set and nothing else. Another
 * degradation (a ledger mismatch) is the graver one and stands, as does a
 * declared outage or maintenance; once it is lifted the next round
 * degrades billing again if usage still drifts.
 */
export function statusAfterUsageReconciliation(current: StatusChange, driftingWindows: number): StatusChange | null {
  if (current.status === 'outage' || current.status === 'maintenance') return null;
  const ours = current.status === 'degraded' && (current.reason ?? '').startsWith(DRIFT_REASON);
  if (driftingWindows > 0) {
    if (current.status === 'degraded' && !ours) return null;
    const reason = `${DRIFT_REASON} ${driftingWindows} usage window${driftingWindows === 1 ? '' : 's'} where reported, ingested, rated and posted usage disagree; run billing:reconcile`;
    return ours && current.reason === reason ? null : { status: 'degraded', reason };
  }
  return ours ? { status: 'operational', reason: null } : null;
}

/**
 * Turns billing's status (`service_status`, announced as
 * `platform.status.billing.changed`) degraded while usage windows drift and
 * back once none does. The drifting windows are counted under the status
 * row's lock, so concurrent reconcilers decide on the newest count, and the
 * change commits with its event.
 */
export class UsageDriftStatus {
  private readonly statuses = new ServiceStatusStore();

  constructor(
    private readonly pool: pg.Pool,
    private readonly store: UsageReconciliationStore,
    private readonly options: { subjectPrefix?: string } = {},
  ) {}

  async apply(actor: Actor): Promise<{ changed: boolean; status: ServiceStatusRecord; driftingWindows: number }> {
    return inTransaction(this.pool, async (tx) => {
      const current = await this.statuses.lock(tx, BILLING_SERVICE);
      const driftingWindows = await this.store.driftingWindows(tx);
      const next = statusAfterUsageReconciliation(current, driftingWindows);
      if (next === null) return { changed: false, status: current, driftingWindows };
      const changed = await changeBillingStatus(tx, this.statuses, next, actor, this.options.subjectPrefix);
      return { changed: true, status: changed, driftingWindows };
    });
  }
}
