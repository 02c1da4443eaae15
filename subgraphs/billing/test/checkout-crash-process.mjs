// One checkout through billing's real Checkout service (built, dist/), as an
// org admin with a fresh policy snapshot, in a process of its own: the crash
// test kills it while Stripe is answering (checkout-crash.test.ts). Input from
// the environment: DATABASE_URL, STRIPE_API_URL, STRIPE_API_KEY,
// ORGANIZATION_ID, IDEMPOTENCY_KEY, AMOUNT, CHECKOUT_URLS (JSON).
import { Access, buildCatalogSnapshot, Catalog, DenyAuditor } from '@aifactory/authz';
import { loadRegistryData } from '@aifactory/contracts';
import { createLogger } from '@aifactory/logging';
import { AccountDirectory } from '../dist/data/account-directory.js';
import { openBillingDatabase } from '../dist/data/database.js';
import { PaymentSessionStore } from '../dist/data/payment-sessions-store.js';
import { Checkout } from '../dist/domain/checkout.js';
import { Ledger } from '../dist/domain/ledger.js';
import { StripePaymentProvider } from '../dist/stripe/stripe-payment-provider.js';

const env = process.env;
const organizationId = env.ORGANIZATION_ID;
const registry = loadRegistryData();
const catalog = new Catalog(
  buildCatalogSnapshot({ scopes: registry.scopes, roles: registry.roles, registryVersions: { scopes: 1, roles: 1 }, publishedAt: new Date().toISOString() }),
);
const principal = { type: 'user', subject: `org-admin-${organizationId}`, platformRoles: [], grants: [{ level: 'organization', id: organizationId, role: 'org_admin' }] };
const correlationId = 'checkout-crash-process';
const denies = new DenyAuditor({ publisher: 'billing', sink: { write: async () => undefined }, logger: createLogger({ service: 'billing-test', level: 'silent' }) });
const policy = {
  ageMs: () => 1_000,
  policy: (id) => ({
    version: 1,
    organizationId: id,
    planId: null,
    keys: Object.fromEntries(registry.policyKeys.map(({ since: _since, ...key }) => [key.key, key])),
    layers: { global: {}, plan: {}, organization: {}, departments: {}, projects: {} },
    publishedAt: new Date().toISOString(),
  }),
};

const database = openBillingDatabase({ DATABASE_URL: env.DATABASE_URL, DB_POOL_SIZE: 2 });
const provider = new StripePaymentProvider({ apiKey: env.STRIPE_API_KEY, apiUrl: env.STRIPE_API_URL, timeoutMs: 30_000 });
const checkout = new Checkout(new Ledger(database.pool, new AccountDirectory(database.pool)), provider, new PaymentSessionStore(database.pool), JSON.parse(env.CHECKOUT_URLS));

const session = await checkout.createCheckoutSession(
  { principal, correlationId, access: new Access({ principal, catalog, correlationId, denies }), accessModel: policy, idempotencyKey: env.IDEMPOTENCY_KEY },
  { organizationId, amount: env.AMOUNT },
);
console.log(`checkout recorded ${session.id}`);
await database.close();
