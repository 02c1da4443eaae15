/**
 * Issue 16 end to end, GraphQL surface: an organization created through
 * iam gets its billing accounts from iam's event; a platform admin credits
 * it (audited, idempotent) and an org_admin cannot; balances, per-project
 * spend, transfers and postings are read through the gateway with keyset
 * pagination; a platform admin publishes a price book and readers list it.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { eventually } from './support/eventually.js';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

const BALANCE = 'query B($id: ID!) { organization(id: $id) { id name balance { currency available paid promotional reserved asOf verifiedAt } } }';
const CREDIT = `mutation C($input: CreditBalanceInput!) {
  creditBalance(input: $input) {
    created expiresAt
    posting { id kind currency description actor { type } transfers { debitAccountKind creditAccountKind amount code } }
    balance { paid promotional available }
  }
}`;
const TRANSFERS = `query T($id: ID!, $first: Int, $after: String, $filter: TransferFilter) {
  organization(id: $id) { transfers(first: $first, after: $after, filter: $filter) { edges { cursor node { id amount code postingId creditAccountKind } } pageInfo { hasNextPage endCursor } } }
}`;
const PUBLISH = `mutation P($input: PublishPriceBookInput!) {
  publishPriceBook(input: $input) { id version currency effectiveFrom prices { unitId unitVersion resourceType resourceId unitPrice } }
}`;

describe('billing through the gateway', () => {
  let t: TestPlatform;
  let admin: string;
  let orgAdmin: string;
  let orgId: string;
  let projectId: string;
  let db: pg.Client;

  const call = async (assertion: string, query: string, variables: Record<string, unknown> = {}) => {
    const { status, body } = await t.graphql({ query, variables, assertion });
    expect(status).toBe(200);
    return body as { data?: any; errors?: { message: string; extensions?: { code?: string } }[] };
  };
  const ok = async (assertion: string, query: string, variables: Record<string, unknown> = {}) => {
    const body = await call(assertion, query, variables);
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  const credit = (assertion: string, input: Record<string, unknown>) =>
    call(assertion, CREDIT, { input: { organizationId: orgId, kind: 'PAID', reason: 'Bank transfer', idempotencyKey: randomUUID(), ...input } });

  beforeAll(async () => {
    t = await startTestPlatform();
    db = await t.db.admin();
    admin = await t.adminAssertion();
    orgId = (await ok(admin, 'mutation { createOrganization(input: { slug: "ledger", name: "Ledger Co", billingCurrency: "EUR" }) { id } }')).createOrganization.id;
    const departmentId = (await ok(admin, 'mutation D($o: ID!) { createDepartment(organizationId: $o, slug: "ml", name: "ML") { id } }', { o: orgId }))
      .createDepartment.id;
    projectId = (await ok(admin, 'mutation P($d: ID!) { createProject(departmentId: $d, slug: "train", name: "Training") { id } }', { d: departmentId }))
      .createProject.id;
    orgAdmin = await t.assertion({ subject: 'ledger-owner', email: 'owner@example.com' });
    const ownerId = (await ok(orgAdmin, '{ me { id } }')).me.id;
    await ok(admin, 'mutation G($u: ID!, $o: ID!) { grantRole(userId: $u, level: ORGANIZATION, nodeId: $o, role: "org_admin") { id } }', { u: ownerId, o: orgId });
  }, 120_000);

  afterAll(async () => {
    await db?.end();
    await t?.close();
  });

  it("opens the organization's accounts in the currency iam's organization.created carries", async () => {
    await eventually(async () => {
      const data = await ok(admin, BALANCE, { id: orgId });
      expect(data.organization.balance).toMatchObject({ currency: 'EUR', available: '0', paid: '0', promotional: '0', reserved: '0' });
    }, 15_000);
    // The project reached billing's read model too: its spend is zero, not unknown.
    await eventually(async () => {
      const data = await ok(admin, 'query S($id: ID!) { project(id: $id) { name spend { currency spent reserved period } } }', { id: projectId });
      expect(data.project).toMatchObject({ name: 'Training', spend: { currency: 'EUR', spent: '0', reserved: '0' } });
    }, 15_000);
  });

  it('lets a platform admin credit once per idempotency key, audited, and refuses the organization’s own admin', async () => {
    const idempotencyKey = randomUUID();
    const first = await credit(admin, { amount: '10000', idempotencyKey });
    expect(first.errors).toBeUndefined();
    expect(first.data.creditBalance).toMatchObject({
      created: true,
      expiresAt: null,
      posting: {
        id: `admin-credit:${idempotencyKey}`,
        kind: 'admin_credit',
        currency: 'EUR',
        description: 'Bank transfer',
        actor: { type: 'user' },
        transfers: [{ debitAccountKind: 'PAYMENT_CLEARING', creditAccountKind: 'CUSTOMER_BALANCE', amount: '10000', code: 'admin_credit' }],
      },
      balance: { paid: '10000', promotional: '0', available: '10000' },
    });
    const retry = await credit(admin, { amount: '10000', idempotencyKey });
    expect(retry.data.creditBalance).toMatchObject({ created: false, balance: { paid: '10000' } });
    const reused = await credit(admin, { amount: '1', idempotencyKey });
    expect(reused.errors?.[0]?.extensions?.code).toBe('IDEMPOTENCY_KEY_REUSED');

    const promo = await credit(admin, { amount: '500', kind: 'PROMOTIONAL', reason: 'Welcome credit' });
    expect(promo.data.creditBalance).toMatchObject({ created: true, posting: { kind: 'promotional_grant' }, balance: { promotional: '500', available: '10500' } });
    expect(new Date(promo.data.creditBalance.expiresAt).getTime()).toBeGreaterThan(Date.now() + 360 * 86_400_000);

    const audits = await db.query<{ count: number }>(
      "SELECT count(*)::int AS count FROM billing.outbox_events WHERE type = 'platform.audit.billing.balance.credit' AND organization_id = $1",
      [orgId],
    );
    expect(audits.rows[0]!.count).toBe(2);

    // org_admin reads the balance but holds no platform:billing:admin: refused before anything is written.
    await eventually(async () => expect((await ok(orgAdmin, BALANCE, { id: orgId })).organization.balance.paid).toBe('10000'), 10_000);
    const refused = await credit(orgAdmin, { amount: '999999' });
    expect(refused.errors?.[0]?.extensions?.code).toBe('AUTH_FORBIDDEN');
    expect((await ok(orgAdmin, BALANCE, { id: orgId })).organization.balance).toMatchObject({ paid: '10000', promotional: '500' });
  });

  it('pages through transfers oldest first, each once, and filters them', async () => {
    for (const amount of ['1', '2', '3']) expect((await credit(admin, { amount })).errors).toBeUndefined();
    const seen: { amount: string; code: string }[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 10; pages += 1) {
      const data: any = await ok(admin, TRANSFERS, { id: orgId, first: 2, after });
      const page = data.organization.transfers;
      seen.push(...page.edges.map((edge: { node: { amount: string; code: string } }) => ({ amount: edge.node.amount, code: edge.node.code })));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(seen).toEqual([
      { amount: '10000', code: 'admin_credit' },
      { amount: '500', code: 'promotional_grant' },
      { amount: '1', code: 'admin_credit' },
      { amount: '2', code: 'admin_credit' },
      { amount: '3', code: 'admin_credit' },
    ]);
    const grants = await ok(admin, TRANSFERS, { id: orgId, filter: { code: 'promotional_grant' } });
    expect(grants.organization.transfers.edges.map((edge: { node: { creditAccountKind: string } }) => edge.node.creditAccountKind)).toEqual(['PROMOTIONAL_CREDIT']);

    const postings = await ok(admin, 'query Q($id: ID!) { organization(id: $id) { postings(first: 1) { edges { node { id kind transfers { amount } } } pageInfo { hasNextPage } } } }', {
      id: orgId,
    });
    expect(postings.organization.postings).toMatchObject({ edges: [{ node: { kind: 'admin_credit', transfers: [{ amount: '10000' }] } }], pageInfo: { hasNextPage: true } });
    const spend = await ok(admin, 'query S($id: ID!) { organization(id: $id) { spend { spent reserved } projectSpend { edges { node { spent } } } reservations { edges { node { id } } } } }', {
      id: orgId,
    });
    expect(spend.organization).toEqual({ spend: { spent: '0', reserved: '0' }, projectSpend: { edges: [] }, reservations: { edges: [] } });
  });

  it('publishes a price book as a platform admin and lists it to readers; an org_admin cannot publish', async () => {
    const units = await ok(orgAdmin, '{ usageUnits { id version baseUnit basePerUnit ratingCategory lifecycle } }');
    expect(units.usageUnits).toContainEqual({ id: 'gpu_hour', version: 1, baseUnit: 'gpu_second', basePerUnit: 3600, ratingCategory: 'INTERVAL', lifecycle: 'ACTIVE' });

    const input = {
      currency: 'EUR',
      description: 'Launch prices',
      prices: [
        { unit: 'gpu_hour', resourceType: 'gpu_sku', resourceId: 'h100-80gb', unitPrice: '350.25' },
        { unit: 'gpu_hour', unitPrice: '200' },
        { unit: 'token_output', resourceType: 'model', resourceId: 'llama-3-70b', unitPrice: '0.000600000001' },
      ],
    };
    const published = (await ok(admin, PUBLISH, { input })).publishPriceBook;
    expect(published).toMatchObject({ version: 1, currency: 'EUR' });
    expect(published.prices).toContainEqual({ unitId: 'token_output', unitVersion: 1, resourceType: 'model', resourceId: 'llama-3-70b', unitPrice: '0.000600000001' });
    expect((await ok(admin, PUBLISH, { input: { ...input, description: 'Second' } })).publishPriceBook.version).toBe(2);

    const refused = await call(orgAdmin, PUBLISH, { input });
    expect(refused.errors?.[0]?.extensions?.code).toBe('AUTH_FORBIDDEN');
    const invalid = await call(admin, PUBLISH, { input: { ...input, prices: [{ unit: 'gpu_minute', unitPrice: '1' }] } });
    expect(invalid.errors?.[0]?.extensions?.code).toBe('BILLING_USAGE_UNIT_UNKNOWN');

    const listed = await ok(orgAdmin, 'query L($after: String) { priceBooks(currency: "EUR", first: 1, after: $after) { edges { node { version description } } pageInfo { hasNextPage endCursor } } }', {});
    expect(listed.priceBooks).toMatchObject({ edges: [{ node: { version: 1, description: 'Launch prices' } }], pageInfo: { hasNextPage: true } });
    const price = await ok(
      orgAdmin,
      'query F { priceInForce(currency: "EUR", unit: "gpu_hour", resourceType: "gpu_sku", resourceId: "a100") { price { unitPrice resourceId } priceBook { version } } }',
    );
    expect(price.priceInForce).toEqual({ price: { unitPrice: '200', resourceId: '*' }, priceBook: { version: 2 } });
    const audits = await db.query<{ count: number }>("SELECT count(*)::int AS count FROM billing.outbox_events WHERE type = 'platform.audit.billing.price_book.publish'");
    expect(audits.rows[0]!.count).toBe(2);
  });
});
