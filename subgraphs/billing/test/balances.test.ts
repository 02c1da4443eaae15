/**
 * Issue 16, GraphQL surface (the domain behind it): an organization's
 * balance (available, paid, promotional, reserved) stamped with the time it
 * is true as of; per-project attribution of spend and holds; transfers,
 * postings and reservations as keyset lists with filters; every read
 * checked with platform:billing:read on the organization or the project.
 */
import { randomUUID } from 'node:crypto';
import type { Actor } from '@aifactory/contracts';
import { BalanceStore } from '../src/data/balances.js';
import { HierarchyStore } from '../src/data/hierarchy.js';
import { LedgerHistoryStore } from '../src/data/ledger-history.js';
import { inTransaction } from '../src/data/transactions.js';
import { Balances } from '../src/domain/balances.js';
import { LedgerHistory } from '../src/domain/ledger-history.js';
import { periodOf } from '../src/domain/money.js';
import { Reservations } from '../src/domain/reservations.js';
import { billingAccess, orgAdmin, platformAdmin, projectMember } from './billing-access.js';
import { codeOf, startBillingFixture, testActor, type BillingFixture } from './billing-fixture.js';
import { knownProject, policySnapshot, policySource } from './reservation-fixture.js';

let fx: BillingFixture;
let balances: Balances;
let history: LedgerHistory;
let reservations: Reservations;
const authz = billingAccess();
const service: Actor = { type: 'service', id: 'gpuaas' };

/** One organization with a known project, 10,000 paid, 500 promotional, and a history of charges and reservations. */
let org: { organizationId: string; departmentId: string; projectId: string };
let otherProjectId: string;
const ids = { posted: '', voided: '', pending: '' };

beforeAll(async () => {
  fx = await startBillingFixture();
  const hierarchy = new HierarchyStore();
  balances = new Balances(new BalanceStore(fx.database.pool), hierarchy, fx.database.pool);
  history = new LedgerHistory(new LedgerHistoryStore(fx.database.pool), hierarchy, fx.database.pool);
  reservations = new Reservations(fx.database.pool, fx.ledger);

  org = await fx.organization({ currency: 'USD', paid: 10_000n, promotional: 500n });
  otherProjectId = randomUUID();
  await knownProject(fx, org);
  await knownProject(fx, { ...org, projectId: otherProjectId });
  const policy = policySource([policySnapshot(org.organizationId)]);
  const reserve = async (projectId: string, amount: bigint) =>
    (
      await reservations.reserve(
        { caller: 'gpuaas', organizationId: org.organizationId, projectId, amount, ttlSeconds: 600, idempotencyKey: randomUUID(), actor: service, correlationId: 'corr-test' },
        policy,
      )
    ).reservation.id;
  ids.posted = await reserve(org.projectId, 1_000n);
  ids.voided = await reserve(org.projectId, 2_000n);
  ids.pending = await reserve(otherProjectId, 3_000n);
  // 1,200 delivered against a hold of 1,000: posted anyway, flagged; promotional credit pays first.
  await reservations.post('gpuaas', ids.posted, 1_200n, service, 'corr-test');
  await reservations.void('gpuaas', ids.voided);
  // A charge on the other project, straight through the ledger (no reservation).
  await inTransaction(fx.database.pool, (tx) =>
    fx.ledger.chargeIn(tx, {
      postingId: `balances-test:${randomUUID()}`,
      kind: 'usage',
      organizationId: org.organizationId,
      departmentId: org.departmentId,
      projectId: otherProjectId,
      amount: 300n,
      actor: testActor,
    }),
  );
}, 60_000);

afterAll(async () => {
  await fx?.close();
});

const admin = () => authz.caller(platformAdmin).access;


describe('balance', () => {
  it('is paid + promotional - reserved, stamped with the database time of the read and the last clean ledger check', async () => {
    const before = await fx.admin.query<{ now: Date }>('SELECT CURRENT_TIMESTAMP AS now');
    const balance = await balances.balance(admin(), org.organizationId);
    // 10,000 paid + 500 promotional; 1,500 spent, promotional first (500 + 700 + 300 paid); 3,000 still held.
    expect(balance).toMatchObject({ currency: 'USD', paid: 9_000n, promotional: 0n, reserved: 3_000n, available: 6_000n, verifiedAt: null });
    expect(balance!.asOf.getTime()).toBeGreaterThanOrEqual(before.rows[0]!.now.getTime());

    const clean = await fx.admin.query<{ started_at: Date }>(
      "INSERT INTO ledger_checks (trigger, ok, started_at) VALUES ('test', true, CURRENT_TIMESTAMP - interval '1 second') RETURNING started_at",
    );
    // A later check that found a mismatch proves nothing: the balance stays verified as of the clean one.
    await fx.admin.query("INSERT INTO ledger_checks (trigger, ok, mismatches, started_at) VALUES ('test', false, '[{}]', CURRENT_TIMESTAMP)");
    expect((await balances.balance(admin(), org.organizationId))!.verifiedAt).toEqual(clean.rows[0]!.started_at);
  });

  it('is refused to another organization’s admin and a project member, audited, and null for an organization billing does not know', async () => {
    expect(await codeOf(balances.balance(authz.caller(orgAdmin(randomUUID())).access, org.organizationId))).toBe('AUTH_FORBIDDEN');
    expect(await codeOf(balances.balance(authz.caller(projectMember(org.organizationId, org.departmentId, org.projectId)).access, org.organizationId))).toBe(
      'AUTH_FORBIDDEN',
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(authz.denies.some((deny) => deny.record.scope === 'platform:billing:read' && deny.organizationId === org.organizationId)).toBe(true);
    expect(await balances.balance(authz.caller(orgAdmin(org.organizationId)).access, org.organizationId)).not.toBeNull();
    const unknown = randomUUID();
    expect(await balances.balance(authz.caller(orgAdmin(unknown)).access, unknown)).toBeNull();
  });
});

describe('spend attribution', () => {
  it('attributes spend and holds of the month to each project and totals them for the organization', async () => {
    const month = periodOf(new Date()).slice(0, 7);
    expect(await balances.organizationSpend(admin(), org.organizationId, null)).toMatchObject({ period: month, currency: 'USD', spent: 1_500n, reserved: 3_000n });
    const page = await balances.projectSpend(admin(), org.organizationId, month, { first: 10 });
    const byProject = Object.fromEntries(page.edges.map((edge) => [edge.node.projectId, [edge.node.spent, edge.node.reserved]]));
    expect(byProject).toEqual({ [org.projectId]: [1_200n, 0n], [otherProjectId]: [300n, 3_000n] });

    const first = await balances.projectSpend(admin(), org.organizationId, month, { first: 1 });
    const second = await balances.projectSpend(admin(), org.organizationId, month, { first: 1, after: first.pageInfo.endCursor });
    expect(first.pageInfo.hasNextPage).toBe(true);
    expect(second.pageInfo.hasNextPage).toBe(false);
    expect(new Set([first.edges[0]!.node.projectId, second.edges[0]!.node.projectId])).toEqual(new Set([org.projectId, otherProjectId]));

    // Another month has nothing: zeros, not an error.
    expect(await balances.organizationSpend(admin(), org.organizationId, '2001-01')).toMatchObject({ period: '2001-01', spent: 0n, reserved: 0n });
    expect(await codeOf(balances.organizationSpend(admin(), org.organizationId, '2026-13'))).toBe('BAD_REQUEST_INVALID_INPUT');
  });

  it("lets a project's member read that project's spend, and nobody else's", async () => {
    const member = authz.caller(projectMember(org.organizationId, org.departmentId, org.projectId)).access;
    expect(await balances.spendOfProject(member, org.projectId, null)).toMatchObject({ projectId: org.projectId, spent: 1_200n, reserved: 0n });
    expect(await codeOf(balances.spendOfProject(member, otherProjectId, null))).toBe('AUTH_FORBIDDEN');
    expect(await balances.spendOfProject(member, randomUUID(), null)).toBeNull();
  });
});

describe('ledger history', () => {
  it('pages through every transfer once, oldest first, with filters on code, project and time', async () => {
    const seen: bigint[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 10; pages += 1) {
      const page = await history.transfers(admin(), org.organizationId, null, { first: 2, after });
      seen.push(...page.edges.map((edge) => edge.node.seq));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    // Two fixture credits, the posted reservation (promotional 500 + paid 700) and the direct charge (paid 300).
    expect(seen).toHaveLength(5);
    expect([...seen].sort((a, b) => (a < b ? -1 : 1))).toEqual(seen);

    const spend = await history.transfers(admin(), org.organizationId, { code: 'spend' }, {});
    expect(spend.edges.map((edge) => [edge.node.amount, edge.node.debitAccountKind, edge.node.creditAccountKind])).toEqual([
      [700n, 'customer_balance', 'revenue'],
      [300n, 'customer_balance', 'revenue'],
    ]);
    const ofProject = await history.transfers(admin(), org.organizationId, { projectId: otherProjectId }, {});
    expect(ofProject.edges.map((edge) => edge.node.amount)).toEqual([300n]);
    const none = await history.transfers(admin(), org.organizationId, { to: new Date(Date.UTC(2001, 0, 1)) }, {});
    expect(none.edges).toEqual([]);
    expect(await codeOf(history.transfers(admin(), org.organizationId, { from: new Date(2), to: new Date(1) }, {}))).toBe('BAD_REQUEST_INVALID_INPUT');
  });

  it('lists postings with their transfers, and finds the flagged one', async () => {
    const flagged = await history.postings(admin(), org.organizationId, { flagged: true }, {});
    expect(flagged.edges).toHaveLength(1);
    const posting = flagged.edges[0]!.node;
    expect(posting).toMatchObject({ id: `reservation:${ids.posted}`, kind: 'reservation_post', projectId: org.projectId, flagged: true });
    expect(posting.transfers.map((transfer) => [transfer.code, transfer.amount])).toEqual([
      ['promotional_spend', 500n],
      ['spend', 700n],
    ]);
    const all = await history.postings(admin(), org.organizationId, null, { first: 100 });
    // The fixture's two credits (paid and promotional), then the posted reservation and the charge, in the order written.
    expect(all.edges).toHaveLength(4);
    expect(all.edges.slice(2).map((edge) => edge.node.kind)).toEqual(['reservation_post', 'usage']);
  });

  it('lists reservations by status', async () => {
    const all = await history.reservations(admin(), org.organizationId, null, {});
    expect(all.edges.map((edge) => [edge.node.id, edge.node.status])).toEqual([
      [ids.posted, 'posted'],
      [ids.voided, 'voided'],
      [ids.pending, 'pending'],
    ]);
    expect(all.edges[0]!.node).toMatchObject({ amount: 1_000n, postedAmount: 1_200n, overReservation: true, caller: 'gpuaas' });
    const pending = await history.reservations(admin(), org.organizationId, { status: 'pending' }, {});
    expect(pending.edges.map((edge) => edge.node.id)).toEqual([ids.pending]);
  });

  it("opens a list narrowed to a project to that project's readers only, and refuses a cursor of another list", async () => {
    const member = authz.caller(projectMember(org.organizationId, org.departmentId, org.projectId)).access;
    const own = await history.transfers(member, org.organizationId, { projectId: org.projectId }, {});
    expect(own.edges.map((edge) => edge.node.projectId)).toEqual([org.projectId, org.projectId]);
    expect(await codeOf(history.transfers(member, org.organizationId, { projectId: otherProjectId }, {}))).toBe('AUTH_FORBIDDEN');
    expect(await codeOf(history.transfers(member, org.organizationId, null, {}))).toBe('AUTH_FORBIDDEN');

    const spendCursor = (await balances.projectSpend(admin(), org.organizationId, null, { first: 1 })).pageInfo.endCursor;
    expect(await codeOf(history.transfers(admin(), org.organizationId, null, { after: spendCursor }))).toBe('BAD_REQUEST_INVALID_INPUT');
    expect(await codeOf(history.transfers(admin(), org.organizationId, null, { first: 101 }))).toBe('BAD_REQUEST_INVALID_INPUT');
  });
});
