import { Worker, type Job } from 'bullmq';
import type { Logger } from '@aifactory/logging';
import type { ServiceMetrics } from '@aifactory/telemetry';
import type { UsageRating } from '../domain/usage-rating.js';
import { RATE_BATCH_ATTEMPTS, RATE_BATCH_JOB, RATING_QUEUE_NAME, type RateBatchJob } from './rating-queue.js';

/** Rating lags from seconds (a fresh batch) to hours (a backlog after an outage). */
const LAG_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
/**
 * Newer unrated batches a job rates along with its own. Rating costs round
 * trips per transaction more than per event, so when batches come in faster
 * than they are rated one by one, taking the backlog along keeps up with it
 * (in the usage bench, 3 did not and 5 did). No more than that, since the
 * transaction holds its organizations' funds locks, which the ledger's
 * other writers (reservations, credits) wait for: six batches of 1,000
 * events hold them for a few hundred milliseconds on a busy machine.
 */
const NEWER_BATCHES_PER_JOB = 5;

export interface RatingWorkerOptions {
  rating: UsageRating;
  redisUrl: string;
  /** BILLING_QUEUE_PREFIX. */
  prefix: string;
  /** BILLING_RATING_CONCURRENCY: batches rated at once. */
  concurrency: number;
  /** BILLING_RATING_LOCK_MS: a job whose worker died is taken up again after about this long. */
  lockDurationMs: number;
  logger: Logger;
  metrics?: ServiceMetrics;
}

export interface RunningRatingWorker {
  /** Resolves once the worker is connected to Redis and taking jobs. */
  ready(): Promise<void>;
  /** Takes no new job and waits for the batches being rated. */
  stop(): Promise<void>;
}

/**
 * Rates ingested batches from the `billing-usage-rating` queue: in the
 * billing server (BILLING_RATING_IN_PROCESS) or in a process of its own
 * (rating-process.ts). Any number of workers may run: a batch's job runs on
 * one at a time, and rating itself is safe to repeat (UsageRating). A job
 * that fails is retried with exponential backoff; after its last attempt it
 * stays failed, a dead letter.
 */
export function startRatingWorker(options: RatingWorkerOptions): RunningRatingWorker {
  const { rating, logger } = options;
  const lag = options.metrics?.histogram('aif_billing_rating_lag_seconds', 'Seconds from a usage batch received to it rated.', [], LAG_BUCKETS);
  const worker = new Worker<RateBatchJob>(
    RATING_QUEUE_NAME,
    async (job: Job<RateBatchJob>) => {
      if (job.name !== RATE_BATCH_JOB) throw new Error(`billing-usage-rating has no job ${job.name}`);
      const rated = await rating.rateBatch(job.data.batchId, { newer: NEWER_BATCHES_PER_JOB });
      // Each batch is observed once, by the job that marked it: a batch taken along finds itself marked when its own job runs.
      for (const marked of [...(rated.marked ? [rated.marked] : []), ...rated.newerMarked]) {
        lag?.observe((marked.ratedAt.getTime() - marked.receivedAt.getTime()) / 1000);
      }
      logger.debug({ batchId: rated.batchId, newer: rated.newerMarked.map((batch) => batch.batchId), events: rated.events, lines: rated.lines }, 'usage batch rated');
    },
    {
      // A worker's blocking reads must wait for Redis however long it is away (BullMQ requires it).
      connection: { url: options.redisUrl, maxRetriesPerRequest: null },
      prefix: options.prefix,
      concurrency: options.concurrency,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.lockDurationMs,
      // A batch whose worker died (a deploy, a crash) goes back to wait; only repeated deaths make it a dead letter.
      maxStalledCount: RATE_BATCH_ATTEMPTS,
    },
  );
  worker.on('failed', (job, error) => {
    const final = job !== undefined && job.attemptsMade >= (job.opts.attempts ?? 1);
    const fields = { err: error, batchId: job?.data.batchId, attempt: job?.attemptsMade };
    if (!final) {
      logger.warn(fields, 'usage batch rating failed; it is retried');
      return;
    }
    logger.error(fields, 'usage batch could not be rated; its job is dead-lettered');
    const batchId = job.data.batchId;
    options.rating.markBatchFailed(batchId).catch((markError: unknown) =>
      // Unmarked, it is only swept again (its job id still exists, so nothing is queued twice).
      logger.error({ err: markError, batchId }, 'a dead-lettered usage batch could not be marked failed'),
    );
  });
  // Redis connection errors: BullMQ reconnects; unheard, the 'error' event would end the process.
  worker.on('error', (error) => logger.warn({ err: error }, 'rating worker lost its Redis connection; it reconnects'));
  return {
    ready: async () => {
      await worker.waitUntilReady();
    },
    stop: () => worker.close(),
  };
}
