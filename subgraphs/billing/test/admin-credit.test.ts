/**
 * Issue 16, GraphQL surface: admin credit, audited and scope-guarded. A
 * platform admin credits an organization's paid balance or grants it
 * promotional credit that expires by policy; a retry with the same
 * idempotency key changes nothing; the change and its
 * `billing.balance.credit` audit record commit together.
 */
import { randomUUID } from 'node:crypto';
import { BalanceStore } from '../src/data/balances.js';
import { LedgerHistoryStore } from '../src/data/ledger-history.js';
import { AdminCredit, type CreditBalanceInput } from '../src/domain/admin-credit.js';
import { PromotionalCredit } from '../src/domain/promotional-credit.js';
import { billingAccess, orgAdmin, platformAdmin, policySource } from './billing-access.js';
import { codeOf, startBillingFixture, type BillingFixture } from './billing-fixture.js';

let fx: BillingFixture;
let credits: AdminCredit;
const authz = billingAccess();
const DAY_MS = 86_400_000;

beforeAll(async () => {
  fx = await startBillingFixture();
  const history = new LedgerHistoryStore(fx.database.pool);
  credits = new AdminCredit(fx.database.pool, fx.ledger, new PromotionalCredit(fx.database.pool, fx.ledger), new BalanceStore(fx.database.pool), history, {
    subjectPrefix: '',
  });
});

afterAll(async () => {
  await fx?.close();
});

const asAdmin = (policy = policySource()) => ({ ...authz.caller(platformAdmin), accessModel: policy });


async function auditsOf(organizationId: string): Promise<Record<string, any>[]> {
  const { rows } = await fx.admin.query<{ payload: Record<string, any>; subject: string; organization_id: string }>(
    "SELECT payload, subject, organization_id FROM outbox_events WHERE type = 'platform.audit.billing.balance.credit' AND organization_id = $1",
    [organizationId],
  );
  return rows;
}

describe('creditBalance', () => {
  it('credits the paid balance from payment clearing once per idempotency key, with one audit record', async () => {
    const { organizationId } = await fx.organization({ currency: 'EUR' });
    const input: CreditBalanceInput = { organizationId, amount: '2500', kind: 'paid', reason: 'Bank transfer 2026-05-04', idempotencyKey: randomUUID() };
    const first = await credits.credit(asAdmin(), input);
    expect(first.created).toBe(true);
    expect(first.expiresAt).toBeNull();
    expect(first.balance).toMatchObject({ currency: 'EUR', paid: 2_500n, available: 2_500n, promotional: 0n });
    expect(first.posting).toMatchObject({ id: `admin-credit:${input.idempotencyKey}`, kind: 'admin_credit', currency: 'EUR', description: 'Bank transfer 2026-05-04' });
    expect(first.posting.transfers.map((t) => [t.debitAccountKind, t.creditAccountKind, t.amount])).toEqual([['payment_clearing', 'customer_balance', 2_500n]]);

    const again = await credits.credit(asAdmin(), input);
    expect(again.created).toBe(false);
    expect(again.posting.id).toBe(first.posting.id);
    expect(again.balance.paid).toBe(2_500n);

    const audits = await auditsOf(organizationId);
    expect(audits).toHaveLength(1);
    const account = (await fx.ledger.organizationAccounts(organizationId)).customer_balance.id;
    expect(audits[0]!.subject).toBe('platform.audit.billing.balance.credit');
    expect(audits[0]!.payload).toMatchObject({
      action: 'billing.balance.credit',
      outcome: 'succeeded',
      privileged: true,
      retentionClass: 'legal_hold',
      principal: { type: 'user', id: 'platform-admin' },
      scope: 'platform:billing:admin',
      resource: `core42:aicloud:global:${organizationId}:-:ledger_account:${account}`,
      reason: 'Bank transfer 2026-05-04',
      details: { postingId: first.posting.id, kind: 'paid', amount: '2500', currency: 'EUR', idempotencyKey: input.idempotencyKey },
    });
  });

  it('refuses the key reused for another amount, kind or organization, changing nothing', async () => {
    const { organizationId } = await fx.organization();
    const other = await fx.organization();
    const key = randomUUID();
    await credits.credit(asAdmin(), { organizationId, amount: '100', kind: 'paid', reason: 'first', idempotencyKey: key });
    for (const changed of [{ amount: '101' }, { kind: 'promotional' as const }, { organizationId: other.organizationId }]) {
      const input = { organizationId, amount: '100', kind: 'paid' as const, reason: 'again', idempotencyKey: key, ...changed };
      expect([changed, await codeOf(credits.credit(asAdmin(), input))]).toEqual([changed, 'IDEMPOTENCY_KEY_REUSED']);
    }
    const funds = await fx.admin.query('SELECT organization_id, paid, promotional FROM organization_funds WHERE organization_id = ANY($1) ORDER BY paid DESC', [
      [organizationId, other.organizationId],
    ]);
    expect(funds.rows).toEqual([
      { organization_id: organizationId, paid: '100', promotional: '0' },
      { organization_id: other.organizationId, paid: '0', promotional: '0' },
    ]);
    expect(await auditsOf(organizationId)).toHaveLength(1);
  });

  it('grants promotional credit that expires by billing.promotional_credit.ttl, and refuses an expiry beyond it', async () => {
    const { organizationId } = await fx.organization();
    const before = Date.now();
    const granted = await credits.credit(asAdmin(), { organizationId, amount: '700', kind: 'promotional', reason: 'Launch promotion', idempotencyKey: randomUUID() });
    expect(granted.balance).toMatchObject({ promotional: 700n, paid: 0n, available: 700n });
    expect(granted.posting.kind).toBe('promotional_grant');
    expect(granted.posting.transfers.map((t) => [t.debitAccountKind, t.creditAccountKind])).toEqual([['promotions', 'promotional_credit']]);
    // The registry default, P365D.
    expect(granted.expiresAt!.getTime() - before).toBeGreaterThanOrEqual(365 * DAY_MS - 5_000);
    expect(granted.expiresAt!.getTime() - before).toBeLessThanOrEqual(365 * DAY_MS + 5_000);
    const grants = await fx.admin.query('SELECT amount, grant_posting_id FROM promotional_grants WHERE organization_id = $1', [organizationId]);
    expect(grants.rows).toEqual([{ amount: '700', grant_posting_id: granted.posting.id }]);
    expect((await auditsOf(organizationId))[0]!.payload.details).toMatchObject({ kind: 'promotional', expiresAt: granted.expiresAt!.toISOString() });

    // The organization's policy shortens the TTL: 10 days allowed, 11 refused.
    const tenDays = policySource({ 'billing.promotional_credit.ttl': 'P10D' });
    const inNineDays = new Date(Date.now() + 9 * DAY_MS);
    const short = await credits.credit(asAdmin(tenDays), {
      organizationId,
      amount: '50',
      kind: 'promotional',
      expiresAt: inNineDays,
      reason: 'Apology',
      idempotencyKey: randomUUID(),
    });
    expect(short.expiresAt).toEqual(inNineDays);
    const tooLate = { organizationId, amount: '50', kind: 'promotional' as const, expiresAt: new Date(Date.now() + 11 * DAY_MS), reason: 'x', idempotencyKey: randomUUID() };
    expect(await codeOf(credits.credit(asAdmin(tenDays), tooLate))).toBe('BILLING_PROMOTIONAL_EXPIRY_INVALID');
    const stale = { ageMs: () => 6 * 60_000, policy: policySource().policy };
    expect(await codeOf(credits.credit(asAdmin(stale), { ...tooLate, expiresAt: null, idempotencyKey: randomUUID() }))).toBe('POLICY_SNAPSHOT_STALE');
    expect(await codeOf(credits.credit(asAdmin(), { ...tooLate, kind: 'paid', idempotencyKey: randomUUID() }))).toBe('BAD_REQUEST_INVALID_INPUT');
  });

  it("refuses an organization's own admin, an amount that is not whole minor units, and an organization billing has no accounts for", async () => {
    const { organizationId } = await fx.organization();
    const input = { organizationId, amount: '10', kind: 'paid' as const, reason: 'self service', idempotencyKey: randomUUID() };
    const ownAdmin = { ...authz.caller(orgAdmin(organizationId)), accessModel: policySource() };
    expect(await codeOf(credits.credit(ownAdmin, input))).toBe('AUTH_FORBIDDEN');
    for (const amount of ['0', '-5', '1.5', '1e3', '9223372036854775808']) {
      expect([amount, await codeOf(credits.credit(asAdmin(), { ...input, amount }))]).toEqual([amount, 'BILLING_AMOUNT_INVALID']);
    }
    const unknown = randomUUID();
    expect(await codeOf(credits.credit(asAdmin(), { ...input, organizationId: unknown }))).toBe('BILLING_ORGANIZATION_UNKNOWN');
    const funds = await fx.admin.query('SELECT paid FROM organization_funds WHERE organization_id = $1', [organizationId]);
    expect(funds.rows).toEqual([{ paid: '0' }]);
    expect(await auditsOf(organizationId)).toHaveLength(0);
  });
});
