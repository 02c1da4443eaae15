import { loadConfigOrExit } from '@aifactory/config';
import { closeOnSignals } from '@aifactory/http';
import { createLogger } from '@aifactory/logging';
import { databaseConfigSchema, subgraphConfigSchema } from '@aifactory/subgraph-kit';
import { openBillingDatabase } from '../data/database.js';
import { BalanceAlerts } from '../domain/balance-alerts.js';
import { alertingLedger } from '../domain/alerting-ledger.js';
import { UsageRating } from '../domain/usage-rating.js';
import { ratingQueueEnv } from './rating-queue.js';
import { startRatingWorker } from './rating-worker.js';

// `node dist/workers/rating-process.js`: a usage rating worker in a process
// of its own, beside or instead of the one in the billing server
// (BILLING_RATING_IN_PROCESS), for when rating needs more hands than the
// servers have. It reads only Postgres and Redis, runs until SIGTERM and
// then finishes the batches it is rating.
const NAME = 'billing-rating';

const ratingProcessConfigSchema = databaseConfigSchema.extend({
  REDIS_URL: subgraphConfigSchema.shape.REDIS_URL,
  ...ratingQueueEnv,
});

const config = loadConfigOrExit(ratingProcessConfigSchema, NAME);
const logger = createLogger({ service: NAME, level: config.LOG_LEVEL });
const database = openBillingDatabase(config);
const balanceAlerts = new BalanceAlerts({ subjectPrefix: config.EVENT_SUBJECT_PREFIX });
const rating = new UsageRating(database.pool, alertingLedger(database.pool, balanceAlerts), { balanceAlerts });
const worker = startRatingWorker({
  rating,
  redisUrl: config.REDIS_URL,
  prefix: config.BILLING_QUEUE_PREFIX,
  concurrency: config.BILLING_RATING_CONCURRENCY,
  lockDurationMs: config.BILLING_RATING_LOCK_MS,
  logger,
});
closeOnSignals(logger, [() => worker.stop(), () => database.close()]);
await worker.ready();
logger.info({ prefix: config.BILLING_QUEUE_PREFIX, concurrency: config.BILLING_RATING_CONCURRENCY }, 'rating worker started');
