/**
 * What tools outside billing (the ledger and usage benchmarks) use to drive
 * billing's ledger and usage pipeline on a database of billing's schema,
 * without a running subgraph.
 */
export { AccountDirectory } from './data/account-directory.js';
export { AccountStore } from './data/accounts.js';
export { openBillingDatabase, type BillingDatabase } from './data/database.js';
export { inTransaction, type Tx } from './data/transactions.js';
export { AccountService } from './domain/accounts.js';
export { alertingLedger } from './domain/alerting-ledger.js';
export { BalanceAlerts } from './domain/balance-alerts.js';
export { Ledger, type PostingSpec } from './domain/ledger.js';
export { Reservations, type PolicySource } from './domain/reservations.js';
export { defaultUsagePolicy } from './domain/usage-ingestion.js';
export { UsageRating } from './domain/usage-rating.js';
export { BullRatingQueue } from './workers/rating-queue.js';
export { startRatingWorker } from './workers/rating-worker.js';
export { startUsageIngestion, USAGE_CONSUMERS } from './workers/usage-ingestion.js';
