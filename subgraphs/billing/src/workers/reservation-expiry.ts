import type { Logger } from '@aifactory/logging';
import type { ServiceMetrics } from '@aifactory/telemetry';
import type { Reservations } from '../domain/reservations.js';
import { startPeriodicTask, type PeriodicTask } from './periodic-task.js';

export interface ReservationExpiryOptions {
  reservations: Reservations;
  metrics: ServiceMetrics;
  logger: Logger;
  /** Pause between sweeps: a lapsed reservation holds funds at most about this much past its expiry. */
  intervalMs?: number;
  /** Reservations expired per transaction. */
  batch?: number;
}

/**
 * Expires reservations whose time is up, every second and at start: each
 * lets go of its hold (organization funds and budgets) with nothing posted.
 * Safe on any number of instances: each sweep locks with SKIP LOCKED and
 * skips what another holds. After each sweep the open-reservations gauge is
 * refreshed from the database, so it counts every instance's reservations.
 */
export function startReservationExpiry({ reservations, metrics, logger, intervalMs = 1_000, batch = 100 }: ReservationExpiryOptions): PeriodicTask {
  const open = metrics.gauge('aif_billing_open_reservations', 'Pending reservations holding funds now, across every instance.', []);
  let stopping = false;
  const task = startPeriodicTask({
    name: 'reservation expiry sweep',
    everyMs: intervalMs,
    logger,
    round: async () => {
      let total = 0;
      // A full batch may mean more are due: keep going until one comes back short.
      for (;;) {
        const expired = await reservations.expireDue(batch);
        total += expired;
        if (expired < batch || stopping) break;
      }
      if (total > 0) logger.info({ expired: total }, 'reservations expired');
      open.set(await reservations.openCount());
    },
  });
  return {
    stop: () => {
      stopping = true;
      return task.stop();
    },
  };
}
