import type { Logger } from '@aifactory/logging';
import type { BillingConfig } from './config.js';
import { AccountDirectory } from './data/account-directory.js';
import { AccountStore } from './data/accounts.js';
import type { BillingDatabase } from './data/database.js';
import { AccountService } from './domain/accounts.js';
import { Ledger } from './domain/ledger.js';

/** billing's domain services, built once per process; resolvers, routes and workers call them. */
export interface BillingServices {
  database: BillingDatabase;
  accounts: AccountService;
  ledger: Ledger;
}

export function createBillingServices(database: BillingDatabase, _config: BillingConfig, _logger: Logger): BillingServices {
  const ledger = new Ledger(database.pool, new AccountDirectory(database.pool));
  return {
    database,
    accounts: new AccountService(new AccountStore(database.prisma)),
    ledger,
  };
}
