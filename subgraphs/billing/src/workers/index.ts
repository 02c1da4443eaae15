import { systemClock } from '@aifactory/clock';
import type { ConnectedServices } from '@aifactory/subgraph-kit';
import type { BillingConfig } from '../config.js';
import type { BillingServices } from '../services.js';
import { startHierarchyProjection } from './hierarchy-projection.js';
import { startLedgerCheck } from './ledger-check.js';
import { startPromotionalExpiry } from './promotional-expiry.js';
import { startReservationExpiry } from './reservation-expiry.js';
import { startUsageReconciliation } from './usage-reconciliation.js';
import { BullRatingQueue } from './rating-queue.js';
import { startRatingWorker } from './rating-worker.js';
import { startUnratedBatchSweeper } from './unrated-batches.js';
import { startUsageAccrual } from './usage-accrual.js';
import { startUsageIngestion } from './usage-ingestion.js';
import { usagePolicyFrom } from '../domain/usage-ingestion.js';
import { UsagePeriodCloses } from '../domain/usage-period-close.js';
import { startUsagePeriodClose } from './usage-period-close.js';
import { startStripeEventWorker, startStripeReachabilityProbe } from './stripe-events.js';

interface Stoppable {
  stop(): Promise<void>;
}

/**
 * billing's background work, started once NATS is connected and stopped at
 * shutdown in reverse order.
 */
export async function startBillingWorkers(services: BillingServices, config: BillingConfig, connected: ConnectedServices): Promise<Stoppable> {
  const started: Stoppable[] = [];
  try {
    started.push(
      await startHierarchyProjection({
        nc: connected.nats,
        subjectPrefix: connected.subjectPrefix,
        pool: services.database.pool,
        schema: services.database.schema,
        logger: connected.logger,
        metrics: connected.metrics,
      }),
    );
    services.paymentMetrics.attach(connected.metrics);
    started.push(startStripeEventWorker({ processor: services.stripeEvents, everyMs: config.BILLING_WEBHOOK_POLL_INTERVAL_MS, logger: connected.logger }));
    started.push(startStripeReachabilityProbe({ provider: services.paymentProvider, metrics: services.paymentMetrics, logger: connected.logger }));
    services.reservations.attachMetrics(connected.metrics);
    started.push(startReservationExpiry({ reservations: services.reservations, metrics: connected.metrics, logger: connected.logger }));
    started.push(
      startPromotionalExpiry({
        promotionalCredit: services.promotionalCredit,
        clock: systemClock,
        everyMs: config.BILLING_PROMOTIONAL_EXPIRY_INTERVAL_MS,
        logger: connected.logger,
      }),
    );
    // The queue closes last: the worker, the sweeper and ingestion started after it stop before it.
    const ratingQueue = new BullRatingQueue({ redisUrl: config.REDIS_URL, prefix: config.BILLING_QUEUE_PREFIX });
    started.push({ stop: () => ratingQueue.close() });
    ratingQueue.attachMetrics(connected.metrics);
    services.usageRating.attachMetrics(connected.metrics);
    if (config.BILLING_RATING_IN_PROCESS) {
      started.push(
        startRatingWorker({
          rating: services.usageRating,
          redisUrl: config.REDIS_URL,
          prefix: config.BILLING_QUEUE_PREFIX,
          concurrency: config.BILLING_RATING_CONCURRENCY,
          lockDurationMs: config.BILLING_RATING_LOCK_MS,
          logger: connected.logger,
          metrics: connected.metrics,
        }),
      );
    }
    started.push(startUsageAccrual({ rating: services.usageRating, clock: systemClock, everyMs: config.BILLING_ACCRUAL_INTERVAL_MS, logger: connected.logger }));
    started.push(startUnratedBatchSweeper({ rating: services.usageRating, queue: ratingQueue, clock: systemClock, logger: connected.logger }));
    const usagePolicy = usagePolicyFrom(() => connected.accessModel());
    started.push(startUsagePeriodClose({ closes: new UsagePeriodCloses(services.database.pool, usagePolicy), clock: systemClock, logger: connected.logger }));
    started.push(
      await startUsageIngestion({
        nc: connected.nats,
        subjectPrefix: connected.subjectPrefix,
        pool: services.database.pool,
        schema: services.database.schema,
        logger: connected.logger,
        metrics: connected.metrics,
        policy: usagePolicy,
        rating: ratingQueue,
        batchSize: config.BILLING_USAGE_BATCH_SIZE,
        scopeWaitMs: config.BILLING_USAGE_SCOPE_WAIT_MS,
      }),
    );
    started.push(
      startLedgerCheck({
        pool: services.database.pool,
        status: services.status,
        everyMs: config.BILLING_LEDGER_CHECK_INTERVAL_MS,
        logger: connected.logger,
        metrics: connected.metrics,
      }),
    );
    started.push(
      startUsageReconciliation({
        reconciliation: services.usageReconciliation,
        everyMs: config.BILLING_RECONCILE_INTERVAL_MS,
        logger: connected.logger,
        metrics: connected.metrics,
      }),
    );
  } catch (error) {
    await stopAll(started);
    throw error;
  }
  return { stop: () => stopAll(started) };
}

async function stopAll(started: readonly Stoppable[]): Promise<void> {
  for (const worker of [...started].reverse()) await worker.stop();
}
