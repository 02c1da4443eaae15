import type { Clock } from '@aifactory/clock';
import type { Logger } from '@aifactory/logging';
import type { UsageRating } from '../domain/usage-rating.js';
import { startPeriodicTask, type PeriodicTask } from './periodic-task.js';

/**
 * Bills the windows of open usage intervals as they end (at start, then
 * every BILLING_ACCRUAL_INTERVAL_MS), so a resource held for days is paid
 * for hour by hour, not at its close. Safe on every instance at once: each
 * organization's windows are billed under its funds lock and a window only
 * once (UsageRating.accrueDue).
 */
export function startUsageAccrual(options: { rating: UsageRating; clock: Clock; everyMs: number; logger: Logger }): PeriodicTask {
  const { rating, clock, everyMs, logger } = options;
  return startPeriodicTask({
    name: 'usage accrual',
    everyMs,
    logger,
    round: async () => {
      const { organizations, lines, failed } = await rating.accrueDue(clock.now());
      if (lines > 0) logger.info({ organizations, lines }, 'usage windows billed');
      for (const { organizationId, error } of failed) {
        logger.error({ err: error, organizationId }, "an organization's usage windows could not be billed; the next round tries again");
      }
    },
  });
}
