import { randomUUID } from 'node:crypto';
import { ManualClock } from '@aifactory/clock';
import { createLogger } from '@aifactory/logging';
import { inTransaction } from '../src/data/transactions.js';
import { checkLedger } from '../src/domain/ledger-check.js';
import { PromotionalCredit, type GrantSpec } from '../src/domain/promotional-credit.js';
import { startPromotionalExpiry } from '../src/workers/promotional-expiry.js';
import { codeOf, startBillingFixture, testActor, type BillingFixture } from './billing-fixture.js';

const DAY_MS = 86_400_000;
const TTL_SECONDS = 30 * 86_400;


describe('promotional credit', () => {
  let fixture: BillingFixture;
  let clock: ManualClock;
  let promotional: PromotionalCredit;

  const grant = (organizationId: string, amount: bigint, extra: Partial<GrantSpec> = {}) =>
    inTransaction(fixture.database.pool, (tx) =>
      promotional.grantIn(tx, { postingId: `grant:${randomUUID()}`, organizationId, amount, ttlSeconds: TTL_SECONDS, actor: testActor, ...extra }),
    );

  const charge = (organizationId: string, amount: bigint) =>
    inTransaction(fixture.database.pool, (tx) =>
      fixture.ledger.chargeIn(tx, { postingId: `usage:${randomUUID()}`, kind: 'usage', organizationId, amount, actor: testActor }),
    );

  const funds = async (organizationId: string) => {
    const { rows } = await fixture.admin.query<{ paid: string; promotional: string }>(
      'SELECT paid::text, promotional::text FROM organization_funds WHERE organization_id = $1',
      [organizationId],
    );
    return rows[0];
  };

  /** An expiry round at `at`, keeping only this organization's grants (the other tests' grants share the database). */
  const expireAt = async (organizationId: string, at: Date) => {
    const round = await promotional.expireDue(at);
    expect(round.failed).toEqual([]);
    return round.expired.filter((expiry) => expiry.grant.organizationId === organizationId);
  };

  beforeAll(async () => {
    fixture = await startBillingFixture();
    clock = new ManualClock(new Date());
    promotional = new PromotionalCredit(fixture.database.pool, fixture.ledger, clock);
  });

  afterAll(async () => {
    await fixture?.close();
  });

  it('is spent before the paid balance', async () => {
    const { organizationId } = await fixture.organization({ paid: 5_000n });
    await grant(organizationId, 1_000n);
    expect(await funds(organizationId)).toEqual({ paid: '5000', promotional: '1000' });

    const first = await charge(organizationId, 300n);
    expect(first.transfers.map((t) => [t.code, t.amount])).toEqual([['promotional_spend', 300n]]);
    expect(await funds(organizationId)).toEqual({ paid: '5000', promotional: '700' });

    const second = await charge(organizationId, 1_000n);
    expect(second.transfers.map((t) => [t.code, t.amount])).toEqual([
      ['promotional_spend', 700n],
      ['spend', 300n],
    ]);
    expect(await funds(organizationId)).toEqual({ paid: '4700', promotional: '0' });
  });

  it('expires by default after billing.promotional_credit.ttl', async () => {
    const { organizationId } = await fixture.organization();
    const { grant: granted, posting } = await grant(organizationId, 100n);
    expect(granted.expiresAt.getTime()).toBe(clock.nowMs() + TTL_SECONDS * 1000);
    expect(posting.transfers).toEqual([expect.objectContaining({ code: 'promotional_grant', amount: 100n })]);
    expect(posting.posting.kind).toBe('promotional_grant');
  });

  it('refuses an expiry beyond the policy TTL, or not in the future, and grants nothing', async () => {
    const { organizationId } = await fixture.organization();
    const beyond = new Date(clock.nowMs() + TTL_SECONDS * 1000 + 1);
    expect(await codeOf(() => grant(organizationId, 100n, { expiresAt: beyond }))).toBe('BILLING_PROMOTIONAL_EXPIRY_INVALID');
    expect(await codeOf(() => grant(organizationId, 100n, { expiresAt: clock.now() }))).toBe('BILLING_PROMOTIONAL_EXPIRY_INVALID');
    expect(await funds(organizationId)).toEqual({ paid: '0', promotional: '0' });
    const { rowCount } = await fixture.admin.query('SELECT 1 FROM promotional_grants WHERE organization_id = $1', [organizationId]);
    expect(rowCount).toBe(0);
  });

  it('grants once per posting id: a repeat returns the first grant, another grant under the id is a conflict', async () => {
    const { organizationId } = await fixture.organization();
    const postingId = `grant:${randomUUID()}`;
    const expiresAt = new Date(clock.nowMs() + 7 * DAY_MS);
    const first = await grant(organizationId, 800n, { postingId, expiresAt });
    expect(first.created).toBe(true);

    clock.advance(60_000);
    const again = await grant(organizationId, 800n, { postingId, expiresAt });
    expect(again.created).toBe(false);
    expect(again.grant).toEqual(first.grant);
    expect(again.posting.posting).toEqual(first.posting.posting);
    // Left to the policy, a repeat takes the first grant's expiry.
    expect((await grant(organizationId, 800n, { postingId })).grant).toEqual(first.grant);

    expect(await codeOf(() => grant(organizationId, 801n, { postingId }))).toBe('BILLING_POSTING_CONFLICT');
    expect(await codeOf(() => grant(organizationId, 800n, { postingId, expiresAt: new Date(expiresAt.getTime() + 1) }))).toBe('BILLING_POSTING_CONFLICT');
    expect(await funds(organizationId)).toEqual({ paid: '0', promotional: '800' });
  });

  it('expires with a posting of exactly the unspent rest, earliest expiry first, and a repeat changes nothing', async () => {
    const { organizationId } = await fixture.organization({ paid: 10_000n });
    const accounts = await fixture.ledger.organizationAccounts(organizationId);
    const promotions = await fixture.ledger.accounts.platformAccount('promotions', 'USD');
    const soon = await grant(organizationId, 1_000n, { expiresAt: new Date(clock.nowMs() + 10 * DAY_MS) });
    const later = await grant(organizationId, 500n, { expiresAt: new Date(clock.nowMs() + 20 * DAY_MS) });

    // 300 spent: by expiry order it came out of the earlier grant, which has 700 left.
    await charge(organizationId, 300n);
    expect(await funds(organizationId)).toEqual({ paid: '10000', promotional: '1200' });

    const first = await expireAt(organizationId, new Date(clock.nowMs() + 10 * DAY_MS));
    expect(first).toHaveLength(1);
    expect(first[0]!.grant).toMatchObject({ id: soon.grant.id, expiredAmount: 700n, expiryPostingId: `promotional-expiry:${soon.grant.id}` });
    expect(first[0]!.posting!.posting).toMatchObject({ id: `promotional-expiry:${soon.grant.id}`, kind: 'promotional_expiry', organizationId });
    expect(first[0]!.posting!.transfers).toEqual([
      expect.objectContaining({ debitAccountId: accounts.promotional_credit.id, creditAccountId: promotions.id, amount: 700n, code: 'promotional_expiry' }),
    ]);
    expect(await funds(organizationId)).toEqual({ paid: '10000', promotional: '500' });

    // Again at the same time: nothing is due, nothing moves.
    const postings = (await fixture.admin.query('SELECT count(*)::int AS n FROM postings')).rows[0].n;
    expect(await expireAt(organizationId, new Date(clock.nowMs() + 10 * DAY_MS))).toEqual([]);
    expect(await funds(organizationId)).toEqual({ paid: '10000', promotional: '500' });
    expect((await fixture.admin.query('SELECT count(*)::int AS n FROM postings')).rows[0].n).toBe(postings);

    // 200 more spent, now from the later grant: 300 of it expires.
    await charge(organizationId, 200n);
    const second = await expireAt(organizationId, new Date(clock.nowMs() + 20 * DAY_MS));
    expect(second.map((expiry) => [expiry.grant.id, expiry.grant.expiredAmount, expiry.posting?.transfers[0]?.amount])).toEqual([[later.grant.id, 300n, 300n]]);
    expect(await funds(organizationId)).toEqual({ paid: '10000', promotional: '0' });

    const { rows } = await fixture.admin.query(
      'SELECT id, amount::text, expired_amount::text, expiry_posting_id FROM promotional_grants WHERE organization_id = $1 ORDER BY expires_at',
      [organizationId],
    );
    expect(rows).toEqual([
      { id: soon.grant.id, amount: '1000', expired_amount: '700', expiry_posting_id: `promotional-expiry:${soon.grant.id}` },
      { id: later.grant.id, amount: '500', expired_amount: '300', expiry_posting_id: `promotional-expiry:${later.grant.id}` },
    ]);
  });

  it('draws each charge from the grant expiring first at that moment, so a grant added later expires with all of itself', async () => {
    const { organizationId } = await fixture.organization({ paid: 10_000n });
    const later = await grant(organizationId, 100n, { expiresAt: new Date(clock.nowMs() + 20 * DAY_MS) });
    await charge(organizationId, 100n);
    // Granted after that spend, expiring before the spent grant: none of it was spent.
    const sooner = await grant(organizationId, 100n, { expiresAt: new Date(clock.nowMs() + 10 * DAY_MS) });
    expect(await funds(organizationId)).toEqual({ paid: '10000', promotional: '100' });

    const first = await expireAt(organizationId, new Date(clock.nowMs() + 10 * DAY_MS));
    expect(first.map((expiry) => [expiry.grant.id, expiry.grant.expiredAmount])).toEqual([[sooner.grant.id, 100n]]);
    expect(await funds(organizationId)).toEqual({ paid: '10000', promotional: '0' });
    const second = await expireAt(organizationId, new Date(clock.nowMs() + 20 * DAY_MS));
    expect(second.map((expiry) => [expiry.grant.id, expiry.grant.expiredAmount, expiry.posting])).toEqual([[later.grant.id, 0n, undefined]]);
  });

  it('draws a repeated charge once', async () => {
    const { organizationId } = await fixture.organization({ paid: 10_000n });
    const granted = await grant(organizationId, 1_000n);
    const postingId = `usage:${randomUUID()}`;
    const once = () =>
      inTransaction(fixture.database.pool, (tx) => fixture.ledger.chargeIn(tx, { postingId, kind: 'usage', organizationId, amount: 400n, actor: testActor }));
    await once();
    await once();
    const { rows } = await fixture.admin.query('SELECT remaining::text FROM promotional_grants WHERE id = $1', [granted.grant.id]);
    expect(rows).toEqual([{ remaining: '600' }]);
  });

  it('expires a grant spent in full with nothing to post', async () => {
    const { organizationId } = await fixture.organization({ paid: 1_000n });
    const spent = await grant(organizationId, 400n, { expiresAt: new Date(clock.nowMs() + 5 * DAY_MS) });
    await charge(organizationId, 400n);

    const round = await expireAt(organizationId, new Date(clock.nowMs() + 5 * DAY_MS));
    expect(round).toEqual([{ grant: expect.objectContaining({ id: spent.grant.id, expiredAmount: 0n, expiryPostingId: null }) }]);
    expect(round[0]!.grant.expiredAt).toBeInstanceOf(Date);
    const { rowCount } = await fixture.admin.query('SELECT 1 FROM postings WHERE id = $1', [`promotional-expiry:${spent.grant.id}`]);
    expect(rowCount).toBe(0);
  });

  it('expires each grant once when several instances run their rounds at the same time', async () => {
    const { organizationId } = await fixture.organization();
    const grants = await Promise.all([100n, 200n, 300n, 400n].map((amount, index) => grant(organizationId, amount, { expiresAt: new Date(clock.nowMs() + (index + 1) * 60_000) })));
    const at = new Date(clock.nowMs() + DAY_MS);
    const rounds = await Promise.all([expireAt(organizationId, at), expireAt(organizationId, at), expireAt(organizationId, at)]);

    const expired = rounds.flat().map((expiry) => expiry.grant.id).sort();
    expect(expired).toEqual(grants.map((g) => g.grant.id).sort());
    const { rows } = await fixture.admin.query<{ n: number; total: string }>(
      "SELECT count(*)::int AS n, sum(t.amount)::text AS total FROM postings p JOIN transfers t ON t.posting_id = p.id WHERE p.kind = 'promotional_expiry' AND p.organization_id = $1",
      [organizationId],
    );
    expect(rows[0]).toEqual({ n: 4, total: '1000' });
    expect(await funds(organizationId)).toEqual({ paid: '0', promotional: '0' });
  });

  it('is expired by the worker as soon as it starts, once the grant is due', async () => {
    const { organizationId } = await fixture.organization();
    const due = await grant(organizationId, 250n, { expiresAt: new Date(clock.nowMs() + 2 * DAY_MS) });
    const workerClock = new ManualClock(clock.nowMs() + 2 * DAY_MS);
    const worker = startPromotionalExpiry({ promotionalCredit: promotional, clock: workerClock, everyMs: 3_600_000, logger: createLogger({ service: 'billing', level: 'silent' }) });
    // stop() waits for the round it ran at start.
    await worker.stop();
    const { rows } = await fixture.admin.query('SELECT expired_amount::text FROM promotional_grants WHERE id = $1', [due.grant.id]);
    expect(rows).toEqual([{ expired_amount: '250' }]);
    expect(await funds(organizationId)).toEqual({ paid: '0', promotional: '0' });
  });

  it('leaves a read model equal to the ledger', async () => {
    const check = await checkLedger(fixture.database.pool, { trigger: 'verify' });
    expect(check.mismatches).toEqual([]);
  });
});
