import { parseArgs } from 'node:util';
import { loadConfigOrExit } from '@aifactory/config';
import { databaseConfigSchema } from '@aifactory/subgraph-kit';
import { AccountDirectory } from '../data/account-directory.js';
import { AccountStore } from '../data/accounts.js';
import { openBillingDatabase } from '../data/database.js';
import { PriceBookStore } from '../data/price-books.js';
import { inTransaction } from '../data/transactions.js';
import { AccountService } from '../domain/accounts.js';
import { Ledger } from '../domain/ledger.js';
import { parseAmount } from '../domain/money.js';

// Opens the demo organization's accounts, credits its opening balance and,
// when its currency has no price book yet, publishes demo list prices so the
// usage products emit is rated.
// Billing also opens accounts when iam's organization.created reaches it;
// the seed does it at once so the demo has money before the consumer runs.
// Both are idempotent, and so is the credit (its posting id names the organization).
const { values } = parseArgs({
  options: { organization: { type: 'string' }, currency: { type: 'string' }, credit: { type: 'string', default: '10000' } },
});
/** Demo list prices in minor units per unit (cents for USD): $2.50 a GPU hour, $0.50 per million input tokens, ... */
const DEMO_PRICES: Record<string, string> = {
  gpu_hour: '250',
  app_runtime_hour: '5',
  request: '0.01',
  token_input: '0.00005',
  token_output: '0.00015',
  cached_token: '0.000025',
};

const config = loadConfigOrExit(databaseConfigSchema, 'billing seed');
const database = openBillingDatabase(config);
try {
  const organizationId = values.organization ?? '';
  const accounts = await new AccountService(new AccountStore(database.prisma, database.pool)).openOrganizationAccounts({
    organizationId,
    currency: values.currency ?? '',
  });
  const amount = parseAmount(values.credit, '--credit', { allowZero: true });
  if (amount > 0n) {
    const ledger = new Ledger(database.pool, new AccountDirectory(database.pool));
    await inTransaction(database.pool, (tx) =>
      ledger.creditIn(tx, {
        postingId: `seed:opening-credit:${organizationId}`,
        kind: 'admin_credit',
        organizationId,
        amount,
        to: 'customer_balance',
        from: 'payment_clearing',
        actor: { type: 'service', id: 'billing-seed' },
        correlationId: 'billing-seed',
        description: 'Demo opening balance',
      }),
    );
  }
  const currency = accounts[0]?.currency ?? values.currency ?? '';
  const priceBook = await publishDemoPrices(new PriceBookStore(database.pool), currency);
  process.stdout.write(`${JSON.stringify({ accountIds: accounts.map((account) => account.id), priceBookVersion: priceBook })}\n`);
} finally {
  await database.close();
}

/** The currency's first price book, from now on; a currency that has one keeps it (the seed runs on every `up`). */
async function publishDemoPrices(store: PriceBookStore, currency: string): Promise<number> {
  const existing = await store.listBooks(currency, null, 1);
  if (existing[0]) return existing[0].version;
  const units = await store.latestUnits();
  return inTransaction(database.pool, async (tx) => {
    const book = await store.insertBook(tx, {
      currency,
      effectiveFrom: new Date(),
      description: 'Demo list prices',
      actor: { type: 'service', id: 'billing-seed' },
    });
    await store.insertPrices(
      tx,
      book.id,
      units
        .filter((unit) => unit.lifecycle !== 'retired' && DEMO_PRICES[unit.id] !== undefined)
        .map((unit) => ({ unitId: unit.id, unitVersion: unit.version, resourceType: '*', resourceId: '*', unitPrice: DEMO_PRICES[unit.id]! })),
    );
    return book.version;
  });
}
