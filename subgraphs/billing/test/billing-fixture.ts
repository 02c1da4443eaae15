import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Actor } from '@aifactory/contracts';
import { isAppError } from '@aifactory/errors';
import { createTestDatabase, type TestDatabase } from '@aifactory/testing';
import { AccountDirectory } from '../src/data/account-directory.js';
import { AccountStore } from '../src/data/accounts.js';
import { openBillingDatabase, type BillingDatabase } from '../src/data/database.js';
import { inTransaction } from '../src/data/transactions.js';
import { AccountService } from '../src/domain/accounts.js';
import { Ledger } from '../src/domain/ledger.js';
import { PromotionalCredit } from '../src/domain/promotional-credit.js';

/** billing's ledger on a private, migrated database. */
export interface BillingFixture {
  db: TestDatabase;
  database: BillingDatabase;
  ledger: Ledger;
  /** A superuser connection to the test database (search_path billing). */
  admin: pg.Client;
  /** Opens a new organization's accounts (and funds row) in `currency`; returns its id and a department and project id. */
  organization(options?: { currency?: string; paid?: bigint; promotional?: bigint }): Promise<{ organizationId: string; departmentId: string; projectId: string }>;
  close(): Promise<void>;
}

export const testActor: Actor = { type: 'user', id: 'billing-test' };

/**
 * The code of the AppError `work` is refused with; `accepted` when it
 * succeeds and a description of anything else it threw, so an assertion on
 * the code fails either way.
 */
export async function codeOf(work: Promise<unknown> | (() => Promise<unknown>)): Promise<string> {
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (error) {
    return isAppError(error) ? error.code : `not an AppError: ${String(error)}`;
  }
  return 'accepted';
}

export async function startBillingFixture(options: { poolSize?: number } = {}): Promise<BillingFixture> {
  const db = await createTestDatabase({ subgraphs: ['billing'] });
  const database = openBillingDatabase({ DATABASE_URL: db.appUrl('billing'), DB_POOL_SIZE: options.poolSize ?? 8 });
  const ledger = new Ledger(database.pool, new AccountDirectory(database.pool));
  const accounts = new AccountService(new AccountStore(database.prisma, database.pool));
  const promotionalCredit = new PromotionalCredit(database.pool, ledger);
  const admin = await db.admin();
  await admin.query('SET search_path TO billing');
  return {
    db,
    database,
    ledger,
    admin,
    organization: async ({ currency = 'USD', paid = 0n, promotional = 0n } = {}) => {
      const organizationId = randomUUID();
      await accounts.openOrganizationAccounts({ organizationId, currency });
      if (paid > 0n) {
        await inTransaction(database.pool, (tx) =>
          ledger.creditIn(tx, {
            postingId: `fixture:${randomUUID()}`,
            kind: 'admin_credit',
            organizationId,
            amount: paid,
            to: 'customer_balance',
            from: 'payment_clearing',
            actor: testActor,
          }),
        );
      }
      // Promotional credit exists only as grants (their expiry accounts for the promotional balance).
      if (promotional > 0n) {
        await inTransaction(database.pool, (tx) =>
          promotionalCredit.grantIn(tx, { postingId: `fixture:${randomUUID()}`, organizationId, amount: promotional, ttlSeconds: 365 * 86_400, actor: testActor }),
        );
      }
      return { organizationId, departmentId: randomUUID(), projectId: randomUUID() };
    },
    close: async () => {
      await admin.end();
      await database.close();
      await db.drop();
    },
  };
}
