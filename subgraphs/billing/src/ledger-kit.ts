/**
 * What tools outside billing (the ledger benchmark) use to drive billing's
 * ledger on a database of billing's schema, without a running subgraph.
 */
export { AccountDirectory } from './data/account-directory.js';
export { AccountStore } from './data/accounts.js';
export { openBillingDatabase, type BillingDatabase } from './data/database.js';
export { inTransaction, type Tx } from './data/transactions.js';
export { AccountService } from './domain/accounts.js';
export { Ledger, type PostingSpec } from './domain/ledger.js';
export { Reservations, type PolicySource } from './domain/reservations.js';
