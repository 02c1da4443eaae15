import { parseArgs } from 'node:util';
import { loadConfigOrExit } from '@aifactory/config';
import { databaseConfigSchema } from '@aifactory/subgraph-kit';
import { AccountDirectory } from '../data/account-directory.js';
import { AccountStore } from '../data/accounts.js';
import { openBillingDatabase } from '../data/database.js';
import { inTransaction } from '../data/transactions.js';
import { AccountService } from '../domain/accounts.js';
import { Ledger } from '../domain/ledger.js';
import { parseAmount } from '../domain/money.js';

// Opens the demo organization's accounts and credits its opening balance.
// Billing also opens accounts when iam's organization.created reaches it;
// the seed does it at once so the demo has money before the consumer runs.
// Both are idempotent, and so is the credit (its posting id names the organization).
const { values } = parseArgs({
  options: { organization: { type: 'string' }, currency: { type: 'string' }, credit: { type: 'string', default: '10000' } },
});
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
  process.stdout.write(`${JSON.stringify({ accountIds: accounts.map((account) => account.id) })}\n`);
} finally {
  await database.close();
}
