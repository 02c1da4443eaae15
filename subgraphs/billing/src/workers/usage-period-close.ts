import type { Clock } from '@aifactory/clock';
import type { Logger } from '@aifactory/logging';
import type { UsagePeriodCloses } from '../domain/usage-period-close.js';
import { startPeriodicTask, type PeriodicTask } from './periodic-task.js';

const EVERY_MS = 15 * 60 * 1000;

/** Closes the months whose usage can no longer arrive (UsagePeriodCloses), every 15 minutes; safe on every instance at once. */
export function startUsagePeriodClose(options: { closes: UsagePeriodCloses; clock: Clock; logger: Logger }): PeriodicTask {
  const { closes, clock, logger } = options;
  return startPeriodicTask({
    name: 'usage period close',
    everyMs: EVERY_MS,
    // The first round waits for IAM's policy (the access model starts after billing's workers).
    firstAfterMs: 60_000,
    logger,
    round: async () => {
      for (const close of await closes.closeDue(clock.now())) {
        logger.info(
          { organizationId: close.organizationId, projectId: close.projectId, period: close.period, posted: close.posted.toString(), droppedUnits: close.droppedUnits.toString() },
          "a month's usage closed; its remainder below one minor unit is dropped",
        );
      }
    },
  });
}
