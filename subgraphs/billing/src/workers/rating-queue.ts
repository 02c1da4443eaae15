import { Queue, type JobsOptions } from 'bullmq';
import { env, z } from '@aifactory/config';
import type { ServiceMetrics } from '@aifactory/telemetry';

/** billing's own background work on BullMQ (ARCHITECTURE.md, Events and jobs): rating ingested usage. */
export const RATING_QUEUE_NAME = 'billing-usage-rating';
export const RATE_BATCH_JOB = 'rate-batch';
/** Tries of a batch before its job stays failed: the dead letter Ops sees (`aif_billing_rating_dead_letters`). */
export const RATE_BATCH_ATTEMPTS = 8;

export interface RateBatchJob {
  batchId: string;
}

/** What ingestion needs of rating: a batch it committed is to be rated. */
export interface RatingQueue {
  enqueue(batchId: string): Promise<void>;
  /** Whether the batch's job used up its attempts (a dead letter), including by stalling, which the worker never hears of. */
  deadLettered?(batchId: string): Promise<boolean>;
}

/**
 * The rating variables, shared by billing's config and the standalone rating
 * process (`node dist/workers/rating-process.js`), so both read them alike.
 */
export const ratingQueueEnv = {
  /** BullMQ's Redis key prefix: every queue key starts `<prefix>:billing-usage-rating:`. Tests use their own. */
  BILLING_QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1 to 64 letters, digits, _ or -').default('aif'),
  /** Batches one rating worker rates at once. */
  BILLING_RATING_CONCURRENCY: env.positiveInt(2),
  /** How long a worker's hold on a job lasts unrenewed: a batch whose worker died is taken up again after about this long. */
  BILLING_RATING_LOCK_MS: env.positiveInt(30_000),
};

const RATE_BATCH_OPTIONS: JobsOptions = {
  attempts: RATE_BATCH_ATTEMPTS,
  backoff: { type: 'exponential', delay: 1_000 },
  removeOnComplete: true,
  // A job that used up its attempts stays, failed: it is the dead letter, and its id keeps the sweeper from adding it again.
  removeOnFail: false,
};

/**
 * The rating queue's producer side. A batch's job id is the batch id, so
 * enqueueing a batch that is waiting, running, retrying or dead-lettered
 * adds nothing; a rated batch's job is gone, and enqueueing it again rates
 * nothing.
 */
export class BullRatingQueue implements RatingQueue {
  readonly queue: Queue<RateBatchJob>;

  constructor(options: { redisUrl: string; prefix: string }) {
    this.queue = new Queue<RateBatchJob>(RATING_QUEUE_NAME, {
      // Fail fast while Redis is down rather than queue commands in memory: the sweeper enqueues what was missed.
      connection: { url: options.redisUrl, enableOfflineQueue: false },
      prefix: options.prefix,
    });
    // Connection errors reach the callers of add(); unheard, the 'error' event would end the process.
    this.queue.on('error', () => undefined);
  }

  async enqueue(batchId: string): Promise<void> {
    await this.queue.add(RATE_BATCH_JOB, { batchId }, { ...RATE_BATCH_OPTIONS, jobId: batchId });
  }

  async deadLettered(batchId: string): Promise<boolean> {
    return (await this.queue.getJobState(batchId)) === 'failed';
  }

  /** Jobs that used up their attempts. */
  deadLetters(): Promise<number> {
    return this.queue.getFailedCount();
  }

  /** `aif_billing_rating_dead_letters`, read from Redis at scrape time, so every instance reports the same. */
  attachMetrics(metrics: ServiceMetrics): void {
    metrics.gauge('aif_billing_rating_dead_letters', 'Usage rating jobs that used up their attempts (failed jobs of billing-usage-rating).', [], async (gauge) => {
      // A scrape must not fail because Redis is down: the gauge keeps its last value.
      const failed = await this.deadLetters().catch(() => undefined);
      if (failed !== undefined) gauge.set(failed);
    });
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
