import { systemClock } from '@aifactory/clock';
import type { ConnectedServices } from '@aifactory/subgraph-kit';
import type { BillingConfig } from '../config.js';
import type { BillingServices } from '../services.js';
import { startHierarchyProjection } from './hierarchy-projection.js';
import { startLedgerCheck } from './ledger-check.js';
import { startPromotionalExpiry } from './promotional-expiry.js';
import { startReservationExpiry } from './reservation-expiry.js';

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
    started.push(
      startLedgerCheck({
        pool: services.database.pool,
        status: services.status,
        everyMs: config.BILLING_LEDGER_CHECK_INTERVAL_MS,
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
