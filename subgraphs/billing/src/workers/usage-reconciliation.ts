import { systemClock, type Clock } from '@aifactory/clock';
import type { Actor } from '@aifactory/contracts';
import type { Logger } from '@aifactory/logging';
import type { ServiceMetrics } from '@aifactory/telemetry';
import type { ReconciliationRound, UsageReconciliation } from '../domain/usage-reconciliation.js';
import { startPeriodicTask, type PeriodicTask } from './periodic-task.js';

const ACTOR: Actor = { type: 'system', id: 'billing.usage-reconciliation' };
/**
 * How far back the first round of a process looks: windows that became
 * judgeable, or got usage, while no billing instance ran for longer than
 * this are counted by `billing:reconcile` over the gap.
 */
export const FIRST_ROUND_LOOKBACK_MS = 24 * 60 * 60 * 1000;

export interface UsageReconciliationWorkerOptions {
  reconciliation: UsageReconciliation;
  /** BILLING_RECONCILE_INTERVAL_MS. */
  everyMs: number;
  logger: Logger;
  metrics: ServiceMetrics;
  /** Dates the first round's look back; the reconciliation's own clock dates every round. */
  clock?: Clock;
}

/**
 * Reconciles usage every interval (BILLING_RECONCILE_INTERVAL_MS) on every
 * instance: rounds are idempotent (counts are saved by window, billing's
 * status changes under its row lock), and a lock held on a connection of the
 * pool while the round takes more would starve a pool of one. It counts only the windows
 * that may have changed since this process's last round, and exports
 * `aif_billing_usage_drift_windows`, read at scrape time so every instance
 * reports the same.
 */
export function startUsageReconciliation(options: UsageReconciliationWorkerOptions): PeriodicTask {
  const { reconciliation, logger, metrics } = options;
  metrics.gauge('aif_billing_usage_drift_windows', 'Usage reconciliation windows that drift now (reported, ingested, rated and posted disagree).', [], async (gauge) => {
    // A scrape must not fail because the database is down: the gauge keeps its last value.
    const windows = await reconciliation.driftingWindows().catch(() => undefined);
    if (windows !== undefined) gauge.set(windows);
  });
  let lastRoundAt = new Date((options.clock ?? systemClock).nowMs() - FIRST_ROUND_LOOKBACK_MS);
  return startPeriodicTask({
    name: 'usage reconciliation',
    everyMs: options.everyMs,
    logger,
    round: async () => {
      const round = await reconciliation.reconcileChanges(lastRoundAt, ACTOR);
      lastRoundAt = round.checkedAt;
      logRound(logger, round);
    },
  });
}

function logRound(logger: Logger, round: ReconciliationRound): void {
  const summary = {
    windows: round.windows.length,
    newlyDrifting: round.newlyDrifting,
    cleared: round.cleared,
    driftingWindows: round.driftingWindows,
    status: round.status.status,
  };
  if (round.newlyDrifting === 0) {
    logger.debug(summary, 'usage reconciliation: round done');
    return;
  }
  logger.error(summary, 'usage reconciliation found drifting windows; billing is degraded until billing:reconcile closes them');
  for (const window of round.windows.filter((w) => w.drift && w.driftedBefore !== true)) {
    logger.error(
      {
        product: window.product,
        organizationId: window.organizationId,
        unit: window.unitId,
        windowStart: window.windowStart.toISOString(),
        windowEnd: window.windowEnd.toISOString(),
        reasons: window.driftReasons,
      },
      'usage window drifts',
    );
  }
}
