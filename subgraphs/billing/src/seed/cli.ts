import { parseArgs } from 'node:util';
import { loadConfigOrExit } from '@aifactory/config';
import { databaseConfigSchema } from '@aifactory/subgraph-kit';
import { openBillingDatabase } from '../data/database.js';
import { AccountStore } from '../data/accounts.js';
import { AccountService } from '../domain/accounts.js';

// Opens the demo organization's accounts. Until billing consumes iam's
// organization.created events (the billing-ledger issue), the dev seed
// passes the organization it just created.
const { values } = parseArgs({ options: { organization: { type: 'string' }, currency: { type: 'string' } } });
const config = loadConfigOrExit(databaseConfigSchema, 'billing seed');
const database = openBillingDatabase(config);
try {
  const accounts = await new AccountService(new AccountStore(database.prisma)).openOrganizationAccounts({
    organizationId: values.organization ?? '',
    currency: values.currency ?? '',
  });
  process.stdout.write(`${JSON.stringify({ accountIds: accounts.map((account) => account.id) })}\n`);
} finally {
  await database.close();
}
