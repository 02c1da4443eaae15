import { systemClock, type Clock } from '@aifactory/clock';
import type { Actor } from '@aifactory/contracts';
import type { ServiceStatusRecord } from '../data/service-status.js';
import type { SavedWindow, UsageReconciliationStore, WindowCounts, WindowKey } from '../data/usage-reconciliation-store.js';
import type { UsageDriftStatus } from './usage-drift-status.js';

/**
 * Why a window drifts, stable snake_case (usage_reconciliations.drift_reasons):
 * the product reported another count or quantity than billing ingested; an
 * ingested event is not rated; a rated event's remainder-chain step is missing.
 */
export const DRIFT_REASONS = ['reported_ne_ingested', 'unrated', 'rated_ne_posted'] as const;
export type DriftReason = (typeof DRIFT_REASONS)[number];

/** Why the window's counts disagree, in DRIFT_REASONS order; empty when it is clean. */
export function driftReasonsOf(counts: WindowCounts): DriftReason[] {
  const reasons: DriftReason[] = [];
  const reported = counts.reportedCount !== null;
  if (reported && (counts.reportedCount !== counts.ingestedCount || counts.reportedQuantity !== counts.ingestedQuantity)) {
    reasons.push('reported_ne_ingested');
  }
  if (counts.ratedCount !== counts.ingestedCount) reasons.push('unrated');
  if (counts.postedCount !== counts.ratedCount) reasons.push('rated_ne_posted');
  return reasons;
}

/** One round's outcome. */
export interface ReconciliationRound {
  /** When the round started counting: each stored window is true as of it. */
  checkedAt: Date;
  /** Windows ended before this are judged; later ones may still have usage in flight. */
  judgedUntil: Date;
  /** The windows counted, with their verdicts. */
  windows: SavedWindow[];
  /** Windows that drift now and did not before (or were never counted). */
  newlyDrifting: number;
  /** Windows that drifted and are clean now. */
  cleared: number;
  /** Windows drifting across all of billing after the round, and the status that left billing in. */
  driftingWindows: number;
  status: ServiceStatusRecord;
}

export interface UsageReconciliationOptions {
  /** How long after a window ends it is judged (BILLING_RECONCILE_GRACE_MS): usage of its last moments may still be on its way. */
  graceMs: number;
  clock?: Clock;
}

/**
 * Reconciliation of usage (issue 17): per window (a product's window
 * summary, or an hour of usage no summary covers) what the product reported,
 * what billing ingested, rated and posted. A window is judged once it ended
 * more than the grace period ago; any disagreement is drift, stored with its
 * reasons, and billing's status is degraded while any window drifts.
 * Counting never changes usage, ratings or postings.
 */
export class UsageReconciliation {
  private readonly clock: Clock;

  constructor(
    private readonly store: UsageReconciliationStore,
    private readonly status: UsageDriftStatus,
    private readonly options: UsageReconciliationOptions,
  ) {
    this.clock = options.clock ?? systemClock;
  }

  /** Counts every window overlapping [from, to) that is old enough to judge (billing:reconcile, compaction). */
  async reconcileSpan(from: Date, to: Date, actor: Actor): Promise<ReconciliationRound> {
    return this.round(actor, (edge) => this.store.windowsOverlapping(from, to, edge));
  }

  /**
   * Counts the windows that may have changed since the previous round (the
   * periodic round), which started at `previousRoundAt`: windows that became
   * old enough to judge since it, windows of usage or summaries received
   * since it, and every drifting window. Usage is stamped when its
   * transaction starts and seen when it commits, so "since" reaches back a
   * grace period before that round.
   */
  async reconcileChanges(previousRoundAt: Date, actor: Actor): Promise<ReconciliationRound> {
    const previousEdge = new Date(previousRoundAt.getTime() - this.options.graceMs);
    return this.round(actor, (edge) => this.store.windowsChanged(previousEdge, edge));
  }

  /** Windows that drift now, across every organization. */
  async driftingWindows(): Promise<number> {
    return this.store.driftingWindows();
  }

  private async round(actor: Actor, windowsToCount: (edge: Date) => Promise<WindowKey[]>): Promise<ReconciliationRound> {
    const checkedAt = this.clock.now();
    const judgedUntil = new Date(checkedAt.getTime() - this.options.graceMs);
    const counted = await this.store.count(await windowsToCount(judgedUntil));
    const windows = await this.store.save(
      counted.map((counts) => ({ ...counts, driftReasons: driftReasonsOf(counts) })),
      checkedAt,
    );
    const { status, driftingWindows } = await this.status.apply(actor);
    return {
      checkedAt,
      judgedUntil,
      windows,
      newlyDrifting: windows.filter((window) => window.drift && window.driftedBefore !== true).length,
      cleared: windows.filter((window) => !window.drift && window.driftedBefore === true).length,
      driftingWindows,
      status,
    };
  }
}
