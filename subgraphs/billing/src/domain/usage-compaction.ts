import type pg from 'pg';
import { effectivePolicy, parsePolicyValue, requireFreshPolicy, type Access, type PolicySnapshot, type PolicyTarget } from '@aifactory/authz';
import { systemClock, type Clock } from '@aifactory/clock';
import { AppError } from '@aifactory/errors';
import { actorOf } from '@aifactory/subgraph-kit';
import { inTransaction } from '../data/transactions.js';
import type { Month, UsageCompactionRecord, UsageCompactionStore } from '../data/usage-compaction-store.js';
import type { PolicySource } from './admin-credit.js';
import { recordAudit, type AuditCaller } from './audit.js';
import { periodArgument } from './balances.js';
import { BILLING_ADMIN } from './price-books.js';
import type { UsageReconciliation } from './usage-reconciliation.js';

export const DISPUTE_WINDOW_KEY = 'billing.usage.dispute_window';
const LATE_LIMIT_KEY = 'billing.usage.late_limit';
/**
 * Past the late limit, ingestion's clock may still be a little behind this
 * one, or a batch classified just before it still committing: usage of the
 * month is only settled this long after.
 */
const LATE_USAGE_GRACE_MS = 60 * 60_000;

/** What must hold before a month's raw usage is deleted, in the order they are checked. */
export const COMPACTION_GATES = ['audit_review', 'dispute_window', 'unrated_usage', 'reconciliation_drift'] as const;
export type CompactionGate = (typeof COMPACTION_GATES)[number];

/** A platform admin's request, with its authorization. */
export interface CompactingCaller extends AuditCaller {
  access: Access;
}

/** `billing.usage.dispute_window` in force for the organization whose policy snapshot this is, in milliseconds. */
export function disputeWindowMs(snapshot: PolicySnapshot): number {
  return durationMs(snapshot, {}, DISPUTE_WINDOW_KEY);
}

/**
 * The longest `billing.usage.late_limit` anywhere in the organization (it is
 * set per project): until that long after a month, ingestion may still
 * accept usage of it.
 */
export function lateLimitMs(snapshot: PolicySnapshot): number {
  const { departments, projects } = snapshot.layers;
  const targets: PolicyTarget[] = [
    {},
    ...Object.keys(departments).map((departmentId) => ({ departmentId })),
    ...Object.entries(projects).map(([projectId, project]) => ({ projectId, departmentId: project.departmentId })),
  ];
  return Math.max(...targets.map((target) => durationMs(snapshot, target, LATE_LIMIT_KEY)));
}

function durationMs(snapshot: PolicySnapshot, target: PolicyTarget, key: string): number {
  const effective = effectivePolicy(snapshot, target, key);
  const parsed = parsePolicyValue(snapshot.keys[key]!, effective.value);
  if (!parsed.ok) {
    throw new AppError('POLICY_VALUE_INVALID', `${key} must be a duration`, { details: { key, level: effective.level } });
  }
  return Number(parsed.exact.units) * 1000;
}

/** The UTC month a client names, `YYYY-MM`. */
export function monthArgument(text: string): Month {
  const period = periodArgument(text);
  const from = new Date(`${period}T00:00:00.000Z`);
  const to = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + 1, 1));
  return { period, from, to };
}

function blocked(gate: CompactionGate, month: Month, message: string, details: Record<string, unknown> = {}): AppError {
  return new AppError('BILLING_COMPACTION_BLOCKED', `Usage of ${month.period.slice(0, 7)} cannot be compacted yet: ${message}`, {
    details: { period: month.period.slice(0, 7), gate, ...details },
  });
}

/**
 * Raw-usage compaction (issue 17): a month's raw usage events, where user
 * ids and envelopes live, are deleted once nothing can still need them:
 * an admin recorded the month's audit review, every organization's dispute
 * window (`billing.usage.dispute_window` after the month's end) has passed,
 * and so has its late limit (`billing.usage.late_limit`: no more usage of
 * the month can be accepted), every accepted event is rated, and every
 * reconciliation window of the month, counted again now, is clean.
 * Ingestion does not take the month's lock, and a closing is never too
 * late: the deletion itself spares accepted events not yet rated. What stays is what was billed: usage
 * lines, postings, ratings, intervals and the rollups analytics read, which
 * hold API key ids but no user ids. Both steps are platform-admin
 * mutations, audited as billing.usage.audit_review and billing.usage.compact.
 */
export class UsageCompaction {
  private readonly clock: Clock;

  constructor(
    private readonly pool: pg.Pool,
    private readonly store: UsageCompactionStore,
    private readonly reconciliation: UsageReconciliation,
    private readonly options: { subjectPrefix: string; clock?: Clock },
  ) {
    this.clock = options.clock ?? systemClock;
  }

  /** The month's compaction state; null before anything was recorded for it. */
  async state(access: Access, periodText: string): Promise<UsageCompactionRecord | null> {
    access.requireHolds(BILLING_ADMIN);
    return this.store.find(this.pool, monthArgument(periodText).period);
  }

  /** Records that an admin reviewed the month's usage (`recordUsageAuditReview`): possible once the month has ended. */
  async recordAuditReview(caller: CompactingCaller, periodText: string, note?: string | null): Promise<UsageCompactionRecord> {
    caller.access.requireHolds(BILLING_ADMIN);
    const month = monthArgument(periodText);
    const now = this.clock.now();
    if (month.to > now) {
      throw new AppError('BAD_REQUEST_INVALID_INPUT', 'A month can be reviewed once it has ended', { details: { field: 'period' } });
    }
    const reason = note?.trim() || null;
    if (reason !== null && reason.length > 500) {
      throw new AppError('BAD_REQUEST_INVALID_INPUT', 'note is at most 500 characters', { details: { field: 'note' } });
    }
    return inTransaction(this.pool, async (tx) => {
      await this.store.lock(tx, month.period);
      const reviewed = await this.store.recordReview(tx, month.period, now, actorOf(caller.principal));
      await recordAudit(
        tx,
        { action: 'billing.usage.audit_review', caller, scope: BILLING_ADMIN, resource: null, reason, details: { period: month.period.slice(0, 7) } },
        { subjectPrefix: this.options.subjectPrefix },
      );
      return reviewed;
    });
  }

  /**
   * Deletes the month's raw usage once every gate holds
   * (`compactUsage`), or refuses with BILLING_COMPACTION_BLOCKED naming
   * the first gate that does not. A month compacted before is returned as
   * it is.
   */
  async compact(caller: CompactingCaller & { accessModel: PolicySource }, periodText: string): Promise<UsageCompactionRecord> {
    caller.access.requireHolds(BILLING_ADMIN);
    const month = monthArgument(periodText);
    const now = this.clock.now();
    const before = await this.store.find(this.pool, month.period);
    if (before?.compactedAt) return before;
    if (!before?.auditReviewedAt) throw blocked('audit_review', month, 'no audit review is recorded; run recordUsageAuditReview');
    await this.requireDisputeWindowsPassed(caller.accessModel, month, now);
    // Counted again now, not trusted from the last round: a window never counted must not pass for clean.
    await this.reconciliation.reconcileSpan(month.from, month.to, actorOf(caller.principal));
    return inTransaction(this.pool, async (tx) => {
      const state = await this.store.lock(tx, month.period);
      if (state.compactedAt) return state;
      const unrated = await this.store.unratedEvents(tx, month);
      if (unrated > 0) throw blocked('unrated_usage', month, `${unrated} accepted usage events are not rated; run billing:reconcile`, { unrated });
      const drifting = await this.store.driftingWindows(tx, month);
      if (drifting > 0) {
        throw blocked('reconciliation_drift', month, `${drifting} reconciliation windows drift; run billing:reconcile`, { driftingWindows: drifting });
      }
      const removed = await this.store.deleteRawUsage(tx, month);
      const compacted = await this.store.markCompacted(tx, month.period, now, removed.events);
      await recordAudit(
        tx,
        {
          action: 'billing.usage.compact',
          caller,
          scope: BILLING_ADMIN,
          resource: null,
          details: { period: month.period.slice(0, 7), eventsRemoved: removed.events.toString(), conflictsRemoved: removed.conflicts.toString() },
        },
        { subjectPrefix: this.options.subjectPrefix },
      );
      return compacted;
    });
  }

  /**
   * Every organization with usage in the month is past its dispute window and
   * its late limit, and the grace after; policy that is missing or stale
   * refuses, never guesses.
   */
  private async requireDisputeWindowsPassed(policy: PolicySource, month: Month, now: Date): Promise<void> {
    if (month.to > now) throw blocked('dispute_window', month, 'the month has not ended');
    const organizations = await this.store.organizationsWithUsage(this.pool, month);
    if (organizations.length === 0) return;
    requireFreshPolicy({ ageMs: policy.ageMs() });
    const open: string[] = [];
    let until = month.to;
    for (const organizationId of organizations) {
      const snapshot = policy.policy(organizationId);
      if (!snapshot) throw new AppError('POLICY_SNAPSHOT_STALE', 'Policy is temporarily unavailable; retry shortly', { details: { organizationId } });
      const closes = new Date(month.to.getTime() + Math.max(disputeWindowMs(snapshot), lateLimitMs(snapshot)) + LATE_USAGE_GRACE_MS);
      if (closes > now) {
        open.push(organizationId);
        if (closes > until) until = closes;
      }
    }
    if (open.length > 0) {
      throw blocked('dispute_window', month, `the dispute window or late limit of ${open.length} organizations is still open, until ${until.toISOString()}`, {
        openUntil: until.toISOString(),
        organizations: open.length,
      });
    }
  }
}
