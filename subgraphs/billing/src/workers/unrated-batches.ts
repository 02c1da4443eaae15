import type { Clock } from '@aifactory/clock';
import type { Logger } from '@aifactory/logging';
import type { UsageRating } from '../domain/usage-rating.js';
import { startPeriodicTask, type PeriodicTask } from './periodic-task.js';
import type { RatingQueue } from './rating-queue.js';

/** A batch younger than this is left to the job its ingestion enqueued. */
export const UNRATED_GRACE_MS = 30_000;
const SWEEP_EVERY_MS = 10_000;
const SWEEP_LIMIT = 1_000;

/**
 * Enqueues again the batches no job rated: ingestion commits a batch before
 * it enqueues it, so a crash or a Redis outage in between leaves a batch
 * without a job. Enqueueing is by batch id, so a batch whose job still
 * waits, runs or was dead-lettered gets no second one.
 */
export async function sweepUnratedBatches(options: { rating: UsageRating; queue: RatingQueue; clock: Clock; graceMs?: number }): Promise<string[]> {
  const { rating, queue, clock, graceMs = UNRATED_GRACE_MS } = options;
  const batches = await rating.unratedBatches(new Date(clock.nowMs() - graceMs), SWEEP_LIMIT);
  for (const batchId of batches) {
    await queue.enqueue(batchId);
    // A job failed in Redis by stalling too often never reaches the worker's failed handler: mark its batch here.
    if (await queue.deadLettered?.(batchId)) await rating.markBatchFailed(batchId);
  }
  return batches;
}

export function startUnratedBatchSweeper(options: { rating: UsageRating; queue: RatingQueue; clock: Clock; logger: Logger; everyMs?: number }): PeriodicTask {
  const { logger, everyMs = SWEEP_EVERY_MS } = options;
  return startPeriodicTask({
    name: 'unrated usage batch sweep',
    everyMs,
    logger,
    round: async () => {
      const batches = await sweepUnratedBatches(options);
      if (batches.length > 0) logger.info({ batches: batches.length }, 'unrated usage batches enqueued again by batch id');
    },
  });
}
