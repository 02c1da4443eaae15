import type { Clock } from '@aifactory/clock';
import type { Logger } from '@aifactory/logging';
import { formatAmount } from '../domain/money.js';
import type { PromotionalCredit } from '../domain/promotional-credit.js';
import { startPeriodicTask, type PeriodicTask } from './periodic-task.js';

/**
 * Expires promotional grants as they fall due (at start, then every
 * `everyMs`). Safe on every instance at once: PromotionalCredit.expireDue
 * locks each grant and skips one another instance expired.
 */
export function startPromotionalExpiry(options: { promotionalCredit: PromotionalCredit; clock: Clock; everyMs: number; logger: Logger }): PeriodicTask {
  const { promotionalCredit, clock, everyMs, logger } = options;
  return startPeriodicTask({
    name: 'promotional credit expiry',
    everyMs,
    logger,
    round: async () => {
      const { expired, failed } = await promotionalCredit.expireDue(clock.now());
      for (const { grant, posting } of expired) {
        logger.info(
          { grantId: grant.id, organizationId: grant.organizationId, expiredAmount: formatAmount(grant.expiredAmount ?? 0n), postingId: posting?.posting.id ?? null },
          'promotional credit expired',
        );
      }
      for (const { grantId, organizationId, error } of failed) {
        logger.error({ err: error, grantId, organizationId }, 'promotional grant could not be expired; the next round tries again');
      }
    },
  });
}
