/**
 * Issue 17, rating: accepted usage becomes lines priced with the snapshot
 * ingestion took, posted in whole minor units along remainder chains (one
 * per organization, project, currency and UTC month: floor(exact total)
 * minus what was posted), exactly once however often or concurrently a
 * batch is rated.
 */
import { randomUUID } from 'node:crypto';
import { ManualClock } from '@aifactory/clock';
import { balanceLowWarningV1 } from '@aifactory/contracts';
import { openOrganizationAccountsIn } from '../src/data/accounts.js';
import { PriceBookStore } from '../src/data/price-books.js';
import { inTransaction } from '../src/data/transactions.js';
import { PromotionalCredit } from '../src/domain/promotional-credit.js';
import { sweepUnratedBatches } from '../src/workers/unrated-batches.js';
import { codeOf, testActor } from './billing-fixture.js';
import {
  insertBatch,
  pointEvent,
  ratedState,
  ratedTotals,
  serviceAccount,
  snapshotPrice,
  useRatingHarness,
  type AcceptedUsage,
  type SnapshotPrice,
  type UsageScope,
} from './rating-fixture.js';

const SEED = Number(process.env.USAGE_RATING_SEED ?? Date.now() % 2 ** 31);
const D = 3_600_000_000_000_000n;

/** mulberry32, seeded so a failing run can be replayed with USAGE_RATING_SEED. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const clock = new ManualClock(Date.UTC(2026, 5, 1));
const h = useRatingHarness(clock);

/** Rating left exactly the expected whole minor units in every chain, in the ledger, the funds and the budgets. */
async function expectExactlyRated(organizationId: string, events: readonly AcceptedUsage[]): Promise<void> {
  const { actual, expected } = await ratedTotals(h.fx.admin, organizationId, events);
  expect({ seed: SEED, ...actual }).toEqual({ seed: SEED, ...expected });
}

function randomEvents(random: () => number, scopes: readonly UsageScope[], count: number, months: readonly number[]): AcceptedUsage[] {
  const prices: SnapshotPrice[] = ['0.00015', '1.333333333333', '0.7', '12.000000000001', '0.000000000007'].map((unitPrice) => snapshotPrice(unitPrice));
  return Array.from({ length: count }, () => {
    const month = months[Math.floor(random() * months.length)]!;
    const occurredAt = new Date(Date.UTC(2026, month, 1 + Math.floor(random() * 27), Math.floor(random() * 24), Math.floor(random() * 60), 0, Math.floor(random() * 1000)));
    const scope = scopes[Math.floor(random() * scopes.length)]!;
    const byKey = random() < 0.5 ? { actor: serviceAccount, apiKeyId: 'key-rating-test' } : { actor: { type: 'user' as const, id: 'user-rating-test' } };
    return pointEvent(scope, prices[Math.floor(random() * prices.length)]!, BigInt(1 + Math.floor(random() * 5_000)), occurredAt, byKey);
  });
}

describe('rating point usage', () => {
  it('posts three events of 0.4 minor units as 0, 0 and 1 along the remainder chain, the remainder kept exact', async () => {
    const scope = await h.fx.organization();
    const at = new Date('2026-05-10T12:00:00Z');
    const eventIds: string[] = [];
    for (let i = 0; i < 3; i += 1) {
      const batch = await insertBatch(h.fx.admin, [pointEvent(scope, snapshotPrice('0.4'), 1n, at)]);
      eventIds.push(...batch.eventIds);
      const rated = await h.rating.rateBatch(batch.batchId);
      expect(rated).toMatchObject({ batchId: batch.batchId, events: 1, lines: 1 });
      expect(rated.marked).not.toBeNull();
      // Again: nothing left to rate, and the batch was marked already.
      expect(await h.rating.rateBatch(batch.batchId)).toEqual({ batchId: batch.batchId, events: 0, lines: 0, marked: null, newerMarked: [] });
    }

    const state = await ratedState(h.fx.admin, scope.organizationId);
    const chain = `usage:${scope.organizationId}:${scope.projectId}:2026-05-01`;
    expect(state.steps.map((step) => [step.id, step.step, step.exact_units, step.posted, step.delta, step.lines, step.ledger_posting_id])).toEqual([
      [`${chain}:1`, 1, (D * 4n / 10n).toString(), '0', '0', 1, null],
      [`${chain}:2`, 2, (D * 8n / 10n).toString(), '0', '0', 1, null],
      [`${chain}:3`, 3, (D * 12n / 10n).toString(), '1', '1', 1, `${chain}:3`],
    ]);
    expect(state).toMatchObject({ lines: 3, ratings: 3, usagePostings: 1, revenue: 1n, funds: -1n, spent: 1n });
    const { rows: ratings } = await h.fx.admin.query('SELECT event_id, usage_posting_id FROM usage_ratings WHERE event_id = ANY($1::uuid[])', [eventIds]);
    expect(new Map(ratings.map((row) => [row.event_id, row.usage_posting_id]))).toEqual(new Map(eventIds.map((id, i) => [id, `${chain}:${i + 1}`])));
    const { rows: lines } = await h.fx.admin.query(
      `SELECT line_key, kind, quantity::text, unit_price::text, exact_units::text, period::text, usage_posting_id FROM usage_lines WHERE organization_id = $1 ORDER BY id`,
      [scope.organizationId],
    );
    expect(lines).toEqual(
      eventIds.map((id, i) => ({
        line_key: `event:${id}`,
        kind: 'point',
        quantity: '1',
        unit_price: '0.400000000000',
        exact_units: (D * 4n / 10n).toString(),
        period: '2026-05-01',
        usage_posting_id: `${chain}:${i + 1}`,
      })),
    );
  });

  it('rates a batch over projects and months exactly to the minor unit, and rolls it up by hour and API key', async () => {
    const random = generator(SEED);
    const scope = await h.fx.organization();
    const other = { ...scope, departmentId: randomUUID(), projectId: randomUUID() };
    const events = randomEvents(random, [scope, other], 600, [3, 4]);
    const { batchId } = await insertBatch(h.fx.admin, events);
    expect(await h.rating.rateBatch(batchId)).toMatchObject({ events: 600, lines: 600 });
    await expectExactlyRated(scope.organizationId, events);

    const { rows: rollups } = await h.fx.admin.query<{ hour: Date; api_key_id: string; lines: string; quantity: string; exact_units: string }>(
      'SELECT hour, api_key_id, lines::text, quantity::text, exact_units::text FROM usage_rollups WHERE organization_id = $1',
      [scope.organizationId],
    );
    const byKey = (rows: { key: string; lines: bigint; quantity: bigint }[]) => {
      const sums = new Map<string, { lines: bigint; quantity: bigint }>();
      for (const row of rows) {
        const sum = sums.get(row.key) ?? { lines: 0n, quantity: 0n };
        sums.set(row.key, { lines: sum.lines + row.lines, quantity: sum.quantity + row.quantity });
      }
      return sums;
    };
    const hourOf = (at: Date) => new Date(Math.floor(at.getTime() / 3_600_000) * 3_600_000).toISOString();
    expect(byKey(rollups.map((row) => ({ key: `${row.hour.toISOString()}|${row.api_key_id}`, lines: BigInt(row.lines), quantity: BigInt(row.quantity) })))).toEqual(
      byKey(events.map((event) => ({ key: `${hourOf(event.occurredAt)}|${event.apiKeyId ?? ''}`, lines: 1n, quantity: event.quantity }))),
    );
    const { rows: exact } = await h.fx.admin.query(
      `SELECT (SELECT sum(exact_units) FROM usage_rollups WHERE organization_id = $1)::text AS rollups,
              (SELECT sum(exact_units) FROM usage_lines WHERE organization_id = $1)::text AS lines`,
      [scope.organizationId],
    );
    expect(exact[0].rollups).toBe(exact[0].lines);
  });

  it('rates late usage at the price book in force when it occurred, not at the one in force when it is rated', async () => {
    const currency = 'SEK';
    const scope = await h.fx.organization({ currency });
    const books = new PriceBookStore(h.fx.database.pool);
    for (const [effectiveFrom, unitPrice] of [
      [new Date('2026-01-01T00:00:00Z'), '2'],
      [new Date('2026-03-01T00:00:00Z'), '3'],
    ] as const) {
      await inTransaction(h.fx.database.pool, async (tx) => {
        const book = await books.insertBook(tx, { currency, effectiveFrom, description: `token prices from ${effectiveFrom.toISOString()}`, actor: testActor });
        await books.insertPrices(tx, book.id, [{ unitId: 'token_output', unitVersion: 1, resourceType: '*', resourceId: '*', unitPrice }]);
      });
    }
    // What ingestion records: the price in force at the event's own time, looked up when it arrives (both arrive in March).
    const snapshotAt = async (at: Date): Promise<SnapshotPrice> => {
      const found = (await books.priceInForce(currency, 'token_output', 'model', 'llama', at))!;
      return { currency, priceBookId: found.book.id, priceBookVersion: found.book.version, unitPrice: found.price.unitPrice, basePerUnit: 1 };
    };
    const late = pointEvent(scope, await snapshotAt(new Date('2026-02-27T23:59:59.999Z')), 1_000n, new Date('2026-02-27T23:59:59.999Z'));
    const current = pointEvent(scope, await snapshotAt(new Date('2026-03-02T08:00:00Z')), 1_000n, new Date('2026-03-02T08:00:00Z'));
    const { batchId } = await insertBatch(h.fx.admin, [current, late]);
    await h.rating.rateBatch(batchId);

    const { rows } = await h.fx.admin.query(
      'SELECT period::text, price_book_version, unit_price::text, exact_units::text FROM usage_lines WHERE organization_id = $1 ORDER BY occurred_at',
      [scope.organizationId],
    );
    expect(rows).toEqual([
      { period: '2026-02-01', price_book_version: 1, unit_price: '2.000000000000', exact_units: (2_000n * D).toString() },
      { period: '2026-03-01', price_book_version: 2, unit_price: '3.000000000000', exact_units: (3_000n * D).toString() },
    ]);
    await expectExactlyRated(scope.organizationId, [late, current]);
  });

  it('rates every event once when two raters take the same batches of one organization at the same time', async () => {
    const random = generator(SEED + 1);
    const scope = await h.fx.organization();
    const other = { ...scope, departmentId: randomUUID(), projectId: randomUUID() };
    const raters = [h.rating, h.newRater()];
    const all: AcceptedUsage[] = [];
    const batches: string[] = [];
    for (let i = 0; i < 8; i += 1) {
      const events = randomEvents(random, [scope, other], 60, [4]);
      all.push(...events);
      batches.push((await insertBatch(h.fx.admin, events)).batchId);
    }
    const results = await Promise.all(batches.flatMap((batchId) => raters.map((rater) => rater.rateBatch(batchId))));
    // Each event was rated by exactly one of the calls; each batch was marked by exactly one.
    expect(results.reduce((sum, result) => sum + result.events, 0)).toBe(all.length);
    expect(results.filter((result) => result.marked !== null).map((result) => result.batchId).sort()).toEqual([...batches].sort());
    await expectExactlyRated(scope.organizationId, all);
  });

  it("keeps rating an organization's usage when another organization of the batch fails, and rates the rest when the job runs again", async () => {
    const good = await h.fx.organization();
    const missing = { organizationId: randomUUID(), departmentId: randomUUID(), projectId: randomUUID() };
    const goodEvents = [pointEvent(good, snapshotPrice('1'), 7n, new Date('2026-05-03T10:00:00Z'))];
    const missingEvents = [pointEvent(missing, snapshotPrice('1'), 5n, new Date('2026-05-03T10:00:00Z')), pointEvent(missing, snapshotPrice('1'), 6n, new Date('2026-05-03T11:00:00Z'))];
    const { batchId } = await insertBatch(h.fx.admin, [...missingEvents, ...goodEvents]);

    // The organization's accounts are not open yet: its transaction fails, the other one commits, the batch stays unrated.
    expect(await codeOf(h.rating.rateBatch(batchId))).toBe('BILLING_ORGANIZATION_UNKNOWN');
    await expectExactlyRated(good.organizationId, goodEvents);
    expect((await ratedState(h.fx.admin, missing.organizationId)).ratings).toBe(0);
    expect((await h.fx.admin.query('SELECT rated_at FROM usage_batches WHERE id = $1', [batchId])).rows[0].rated_at).toBeNull();

    await inTransaction(h.fx.database.pool, (tx) => openOrganizationAccountsIn(tx, missing.organizationId, 'USD'));
    expect(await h.rating.rateBatch(batchId)).toMatchObject({ events: 2, lines: 2, marked: expect.anything() });
    await expectExactlyRated(missing.organizationId, missingEvents);
    await expectExactlyRated(good.organizationId, goodEvents);
  });

  it("warns of a low balance at the threshold the organization's usage was ingested with", async () => {
    const warned = await h.fx.organization({ paid: 6_000n });
    const calm = await h.fx.organization({ paid: 6_000n });
    const at = new Date('2026-05-20T09:00:00Z');
    const { batchId } = await insertBatch(h.fx.admin, [
      pointEvent(warned, snapshotPrice('1'), 2_000n, at, { lowBalanceThreshold: 5_000n }),
      // Below the policy default of 1000 only: not low at its own threshold.
      pointEvent(calm, snapshotPrice('1'), 2_000n, at, { lowBalanceThreshold: 1_000n }),
    ]);
    await h.rating.rateBatch(batchId);
    const { rows } = await h.fx.admin.query('SELECT type, aggregate_id, payload FROM outbox_events WHERE aggregate_id = ANY($1::text[])', [[warned.organizationId, calm.organizationId]]);
    expect(rows).toEqual([
      { type: balanceLowWarningV1.type, aggregate_id: warned.organizationId, payload: expect.objectContaining({ balance: '4000', threshold: '5000', reason: 'crossed' }) },
    ]);
  });

  it('rates the unrated usage of a span by its batches, and leaves the rest', async () => {
    const scope = await h.fx.organization();
    const inside = [pointEvent(scope, snapshotPrice('2'), 3n, new Date('2026-01-15T00:00:00Z')), pointEvent(scope, snapshotPrice('2'), 4n, new Date('2026-01-31T23:59:59.999Z'))];
    const outside = [pointEvent(scope, snapshotPrice('2'), 5n, new Date('2026-02-01T00:00:00Z'))];
    const first = await insertBatch(h.fx.admin, inside);
    const second = await insertBatch(h.fx.admin, outside);
    expect(await h.rating.rateUnrated(new Date('2026-01-01T00:00:00Z'), new Date('2026-02-01T00:00:00Z'))).toEqual({ batches: 1, events: 2 });
    await expectExactlyRated(scope.organizationId, inside);
    const { rows } = await h.fx.admin.query('SELECT id, rated_at IS NOT NULL AS rated FROM usage_batches WHERE id = ANY($1::uuid[]) ORDER BY rated', [[first.batchId, second.batchId]]);
    expect(rows).toEqual([
      { id: second.batchId, rated: false },
      { id: first.batchId, rated: true },
    ]);
    expect(await h.rating.rateUnrated(new Date('2026-01-01T00:00:00Z'), new Date('2026-03-01T00:00:00Z'))).toEqual({ batches: 1, events: 1 });
  });
});

describe('rating a backlog', () => {
  // Received far from every other test's batches: `newer` takes along unrated batches received at or after a batch.
  const receivedAt = (year: number, ms: number) => new Date(Date.UTC(year, 0, 1, 0, 0, 0, ms));

  it('rates newer unrated batches along with its own in one transaction, up to the number asked, and their jobs then find nothing left', async () => {
    const scopes = [await h.fx.organization(), await h.fx.organization()];
    const at = new Date('2026-05-12T08:00:00Z');
    const batches: { batchId: string; events: AcceptedUsage[] }[] = [];
    for (let i = 0; i < 3; i += 1) {
      const events = scopes.map((scope) => pointEvent(scope, snapshotPrice('0.4'), 1n, at));
      batches.push({ batchId: (await insertBatch(h.fx.admin, events, { receivedAt: receivedAt(2100, i) })).batchId, events });
    }
    const [first, second, third] = batches as [(typeof batches)[0], (typeof batches)[0], (typeof batches)[0]];

    const rated = await h.rating.rateBatch(first.batchId, { newer: 1 });
    expect(rated).toMatchObject({ events: 4, lines: 4, marked: expect.anything() });
    expect(rated.newerMarked.map((batch) => batch.batchId)).toEqual([second.batchId]);
    expect(await h.rating.rateBatch(second.batchId)).toEqual({ batchId: second.batchId, events: 0, lines: 0, marked: null, newerMarked: [] });
    // One transaction: one chain step per organization for both batches' events.
    for (const scope of scopes) expect((await ratedState(h.fx.admin, scope.organizationId)).steps.map((step) => step.lines)).toEqual([2]);
    const { rows } = await h.fx.admin.query('SELECT rated_at FROM usage_batches WHERE id = $1', [third.batchId]);
    expect(rows[0].rated_at).toBeNull();

    expect(await h.rating.rateBatch(third.batchId, { newer: 5 })).toMatchObject({ events: 2, newerMarked: [] });
    for (const scope of scopes) {
      await expectExactlyRated(
        scope.organizationId,
        batches.flatMap((batch) => batch.events.filter((event) => event.scope === scope)),
      );
    }
  });

  it("rates its own batch when a newer one taken along fails, and leaves that one to its own job", async () => {
    const good = await h.fx.organization();
    const missing = { organizationId: randomUUID(), departmentId: randomUUID(), projectId: randomUUID() };
    const at = new Date('2026-05-13T08:00:00Z');
    const goodEvents = [pointEvent(good, snapshotPrice('1'), 3n, at)];
    const missingEvents = [pointEvent(missing, snapshotPrice('1'), 4n, at)];
    const own = await insertBatch(h.fx.admin, goodEvents, { receivedAt: receivedAt(2101, 0) });
    const failing = await insertBatch(h.fx.admin, missingEvents, { receivedAt: receivedAt(2101, 1) });

    expect(await h.rating.rateBatch(own.batchId, { newer: 1 })).toMatchObject({ events: 1, marked: expect.anything(), newerMarked: [] });
    await expectExactlyRated(good.organizationId, goodEvents);
    expect(await codeOf(h.rating.rateBatch(failing.batchId))).toBe('BILLING_ORGANIZATION_UNKNOWN');

    await inTransaction(h.fx.database.pool, (tx) => openOrganizationAccountsIn(tx, missing.organizationId, 'USD'));
    expect(await h.rating.rateBatch(failing.batchId)).toMatchObject({ events: 1, marked: expect.anything() });
    await expectExactlyRated(missing.organizationId, missingEvents);
  });

  it("spends promotional credit first across a transaction's chain steps, one after the other, drawing the grant expiring first first", async () => {
    const scope = await h.fx.organization();
    const other = { ...scope, departmentId: randomUUID(), projectId: randomUUID() };
    const promotions = new PromotionalCredit(h.fx.database.pool, h.fx.ledger);
    const grant = (amount: bigint, days: number) =>
      inTransaction(h.fx.database.pool, (tx) =>
        promotions.grantIn(tx, {
          postingId: `test:${randomUUID()}`,
          organizationId: scope.organizationId,
          amount,
          expiresAt: new Date(Date.now() + days * 86_400_000),
          ttlSeconds: 365 * 86_400,
          actor: testActor,
        }),
      );
    const later = (await grant(30n, 20)).grant;
    const sooner = (await grant(20n, 10)).grant;
    const at = new Date('2026-05-14T08:00:00Z');
    const after = new Date('2026-05-14T09:00:00Z');
    const events = [
      pointEvent(scope, snapshotPrice('1'), 15n, at),
      pointEvent(other, snapshotPrice('1'), 25n, after),
      pointEvent(scope, snapshotPrice('1'), 12n, at),
      pointEvent(other, snapshotPrice('1'), 18n, after),
    ];
    const remaining = async () =>
      new Map(
        (await h.fx.admin.query('SELECT id, remaining::text AS remaining FROM promotional_grants WHERE organization_id = $1', [scope.organizationId])).rows.map(
          (row) => [row.id, row.remaining],
        ),
      );
    // Two batches, each rated in one transaction: its two chains' charges in one ledger call.
    await h.rating.rateBatch((await insertBatch(h.fx.admin, events.slice(0, 2))).batchId);
    expect(await remaining()).toEqual(new Map([[sooner.id, '0'], [later.id, '10']]));
    await h.rating.rateBatch((await insertBatch(h.fx.admin, events.slice(2))).batchId);

    const { rows: transfers } = await h.fx.admin.query<{ project_id: string; step: number; code: string; amount: string }>(
      `SELECT p.project_id, (p.metadata->>'step')::int AS step, t.code, t.amount::text AS amount
       FROM transfers t JOIN postings p ON p.id = t.posting_id
       WHERE p.organization_id = $1 AND p.kind = 'usage' ORDER BY step, p.project_id = $2 DESC, t.ordinal`,
      [scope.organizationId, scope.projectId],
    );
    // As charging each step in turn would: 40 of the 50 promotional; then its last 10 and 20 of the paid balance, the earlier chain first.
    expect(transfers.map(({ project_id, step, code, amount }) => [project_id === scope.projectId ? 'scope' : 'other', step, code, amount])).toEqual([
      ['scope', 1, 'promotional_spend', '15'],
      ['other', 1, 'promotional_spend', '25'],
      ['scope', 2, 'promotional_spend', '10'],
      ['scope', 2, 'spend', '2'],
      ['other', 2, 'spend', '18'],
    ]);
    expect(await remaining()).toEqual(new Map([[sooner.id, '0'], [later.id, '0']]));
    const { rows: funds } = await h.fx.admin.query('SELECT paid::text AS paid, promotional::text AS promotional FROM organization_funds WHERE organization_id = $1', [scope.organizationId]);
    expect(funds[0]).toEqual({ paid: '-20', promotional: '0' });
  });
});

describe('the unrated batch sweeper', () => {
  it('enqueues batches left unrated for 30 s, and no rated or younger one', async () => {
    const scope = await h.fx.organization();
    const now = clock.now();
    const stale = await insertBatch(h.fx.admin, [pointEvent(scope, snapshotPrice('1'), 1n, now)], { receivedAt: new Date(now.getTime() - 30_001) });
    const young = await insertBatch(h.fx.admin, [pointEvent(scope, snapshotPrice('1'), 1n, now)], { receivedAt: new Date(now.getTime() - 29_000) });
    const rated = await insertBatch(h.fx.admin, [pointEvent(scope, snapshotPrice('1'), 1n, now)], { receivedAt: new Date(now.getTime() - 60_000) });
    await h.rating.rateBatch(rated.batchId);
    // Other tests' batches are all rated, or (the failed organization's) rated by now too.
    const enqueued: string[] = [];
    const queue = { enqueue: async (batchId: string) => void enqueued.push(batchId) };
    await sweepUnratedBatches({ rating: h.rating, queue, clock });
    expect(enqueued).toEqual([stale.batchId]);
    clock.advance(1_001);
    enqueued.length = 0;
    await sweepUnratedBatches({ rating: h.rating, queue, clock });
    expect(enqueued).toEqual([stale.batchId, young.batchId]);
    await h.rating.rateBatch(stale.batchId);
    await h.rating.rateBatch(young.batchId);
  });

  it('leaves a dead-lettered batch to billing:reconcile, so failed batches never crowd out newer ones', async () => {
    const scope = await h.fx.organization();
    const now = clock.now();
    const failed = await insertBatch(h.fx.admin, [pointEvent(scope, snapshotPrice('1'), 1n, now)], { receivedAt: new Date(now.getTime() - 120_000) });
    const lost = await insertBatch(h.fx.admin, [pointEvent(scope, snapshotPrice('1'), 1n, now)], { receivedAt: new Date(now.getTime() - 60_000) });
    await h.rating.markBatchFailed(failed.batchId);
    // A job BullMQ failed in Redis for stalling too often: the worker never hears of it, the sweep finds it.
    const stalled = await insertBatch(h.fx.admin, [pointEvent(scope, snapshotPrice('1'), 1n, now)], { receivedAt: new Date(now.getTime() - 90_000) });
    const enqueued: string[] = [];
    const queue = { enqueue: async (batchId: string) => void enqueued.push(batchId), deadLettered: async (batchId: string) => batchId === stalled.batchId };
    await sweepUnratedBatches({ rating: h.rating, queue, clock });
    expect(enqueued).toEqual([stalled.batchId, lost.batchId]);
    enqueued.length = 0;
    await sweepUnratedBatches({ rating: h.rating, queue, clock });
    expect(enqueued).toEqual([lost.batchId]);
    await h.rating.rateBatch(stalled.batchId);
    // Nor does another job take it along as a newer batch.
    const earlier = await insertBatch(h.fx.admin, [pointEvent(scope, snapshotPrice('1'), 1n, now)], { receivedAt: new Date(now.getTime() - 180_000) });
    const rated = await h.rating.rateBatch(earlier.batchId, { newer: 5 });
    expect(rated.newerMarked.map((batch) => batch.batchId)).toEqual([lost.batchId]);
    // Reconcile still rates it (its cause fixed).
    await h.rating.rateBatch(failed.batchId);
    expect((await h.fx.admin.query('SELECT rated_at IS NOT NULL AS rated FROM usage_batches WHERE id = $1', [failed.batchId])).rows[0].rated).toBe(true);
  });
});
