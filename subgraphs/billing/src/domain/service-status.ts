import type pg from 'pg';
import { statusSubject, type Actor } from '@aifactory/contracts';
import { writeOutboxEvent } from '@aifactory/events';
import { LedgerCheckStore } from '../data/ledger-checks.js';
import { ServiceStatusStore, type ServiceStatusRecord, type ServiceStatusValue } from '../data/service-status.js';
import { inTransaction, type Tx } from '../data/transactions.js';
import type { LedgerCheckResult } from './ledger-check.js';

export const BILLING_SERVICE = 'billing';
/** Marks a degraded status the ledger check set, so only a clean check lifts it. */
const LEDGER_REASON = 'Ledger check:';

export interface StatusChange {
  status: ServiceStatusValue;
  reason: string | null;
}

/**
 * The status a ledger check leaves billing in, or null when it changes
 * nothing (seed 002, degradation model): a mismatch degrades billing, naming
 * the count; a clean check lifts a degradation the ledger check set and
 * nothing else. An outage or maintenance someone declared stands either way.
 */
export function statusAfterLedgerCheck(current: StatusChange, mismatches: number): StatusChange | null {
  if (current.status === 'outage' || current.status === 'maintenance') return null;
  if (mismatches > 0) {
    const reason = `${LEDGER_REASON} ${mismatches} mismatch${mismatches === 1 ? '' : 'es'} between the balance read model and the ledger; run billing:verify`;
    return current.status === 'degraded' && current.reason === reason ? null : { status: 'degraded', reason };
  }
  return current.status === 'degraded' && (current.reason ?? '').startsWith(LEDGER_REASON) ? { status: 'operational', reason: null } : null;
}

/**
 * Moves billing's status row (locked in `tx`) to `next` and writes its
 * `platform.status.billing.changed` event in the same transaction. Every
 * writer of the status (ledger check, usage reconciliation) goes through
 * here, so they announce a change with one event shape.
 */
export async function changeBillingStatus(
  tx: Tx,
  statuses: ServiceStatusStore,
  next: StatusChange,
  actor: Actor,
  subjectPrefix: string | undefined,
): Promise<ServiceStatusRecord> {
  const changed = await statuses.change(tx, BILLING_SERVICE, next);
  await writeOutboxEvent(
    tx,
    {
      type: statusSubject(BILLING_SERVICE),
      version: 1,
      payload: { service: BILLING_SERVICE, status: changed.status, reason: changed.reason, changedAt: changed.changedAt.toISOString() },
      aggregateId: BILLING_SERVICE,
      aggregateVersion: changed.version,
      actor,
    },
    { subjectPrefix },
  );
  return changed;
}

/**
 * billing's status as the platform sees it (`service_status`, announced as
 * `platform.status.billing.changed`). A change and its event are written in
 * one transaction, so the event is published if and only if the change commits.
 */
export class BillingStatus {
  private readonly statuses = new ServiceStatusStore();
  private readonly checks = new LedgerCheckStore();

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: { subjectPrefix?: string } = {},
  ) {}

  /**
   * Applies a recorded ledger check's verdict. A check of a later snapshot
   * recorded meanwhile (another instance, billing:verify) decides instead,
   * so a slow clean check can never lift a degradation a newer one found.
   */
  async applyLedgerCheck(check: LedgerCheckResult, actor: Actor): Promise<{ changed: boolean; status: ServiceStatusRecord }> {
    return inTransaction(this.pool, async (tx) => {
      const current = await this.statuses.lock(tx, BILLING_SERVICE);
      if (await this.checks.newerThan(tx, check)) return { changed: false, status: current };
      const next = statusAfterLedgerCheck(current, check.mismatches.length);
      if (next === null) return { changed: false, status: current };
      const changed = await changeBillingStatus(tx, this.statuses, next, actor, this.options.subjectPrefix);
      return { changed: true, status: changed };
    });
  }
}
