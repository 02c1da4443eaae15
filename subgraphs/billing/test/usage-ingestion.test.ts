/**
 * Issue 17, usage to money: billing ingests products' usage from JetStream
 * once per event id, in one transaction per batch, acknowledging only after
 * the commit; accepted usage carries the price and policy of its time,
 * rejected usage its reason; usage of a scope billing does not know yet
 * waits for the hierarchy, then is rejected.
 */
import { randomUUID } from 'node:crypto';
import type { PolicySnapshot } from '@aifactory/authz';
import type { Clock } from '@aifactory/clock';
import { loadRegistryData, prefixSubject, type EventEnvelope } from '@aifactory/contracts';
import { createLogger } from '@aifactory/logging';
import { ServiceMetrics } from '@aifactory/telemetry';
import { deleteEventStreams, TEST_NATS_URL, uniqueEventSubjectPrefix } from '@aifactory/testing';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { UsageIngestStore } from '../src/data/usage-ingest-store.js';
import { defaultUsagePolicy, USAGE_REJECTION_REASONS, UsageIngestion, usagePolicyFrom } from '../src/domain/usage-ingestion.js';
import { startUsageIngestion, USAGE_CONSUMERS } from '../src/workers/usage-ingestion.js';
import { startBillingFixture, type BillingFixture } from './billing-fixture.js';
import {
  ensureUsageStreams,
  insertPriceBook,
  intervalUsage,
  knownProject,
  knownScope,
  pointUsage,
  uniqueCurrency,
  USAGE,
  usageEnvelope,
  UsagePublisher,
  waitFor,
  type KnownScope,
} from './usage-fixture.js';

const subjectPrefix = uniqueEventSubjectPrefix();
/** Redelivery delays of 1 s, 2 s and 5 s: usage of an unknown scope is rejected on its fourth delivery. */
const SCOPE_WAIT_MS = 8_000;
const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;
const currency = uniqueCurrency();

/** Real time plus an offset a test moves forward: billing reading its stream long after products published. */
let offsetMs = 0;
const clock: Clock = { now: () => new Date(Date.now() + offsetMs), nowMs: () => Date.now() + offsetMs };

let fx: BillingFixture;
let nc: NatsConnection;
let jsm: JetStreamManager;
let publisher: UsagePublisher;
let ingestion: { stop(): Promise<void> };
const metrics = new ServiceMetrics('billing-usage-test');
const enqueued: string[] = [];
let book: { id: string; version: number };

beforeAll(async () => {
  fx = await startBillingFixture({ poolSize: 10 });
  nc = await connect({ servers: TEST_NATS_URL, name: 'billing-usage-ingestion-test' });
  jsm = await jetstreamManager(nc);
  await ensureUsageStreams(nc, subjectPrefix);
  publisher = new UsagePublisher(nc, subjectPrefix);
  book = await insertPriceBook(fx.admin, {
    currency,
    prices: [
      { unit: 'token_output', unitPrice: '0.002' },
      { unit: 'token_input', unitPrice: '0.0005' },
      { unit: 'request', unitPrice: '1' },
      { unit: 'gpu_hour', unitPrice: '250.5' },
      { unit: 'gpu_hour', resourceType: 'gpu_allocation', resourceId: 'alloc-special', unitPrice: '99' },
    ],
  });
  ingestion = await startUsageIngestion({
    nc,
    subjectPrefix,
    pool: fx.database.pool,
    schema: fx.database.schema,
    logger: createLogger({ service: 'billing-test', level: 'error' }),
    metrics,
    policy: defaultUsagePolicy,
    rating: {
      enqueue: async (batchId) => {
        enqueued.push(batchId);
      },
    },
    batchSize: 1000,
    scopeWaitMs: SCOPE_WAIT_MS,
    clock,
  });
}, 60_000);

afterAll(async () => {
  await ingestion?.stop();
  await nc?.close();
  await deleteEventStreams(subjectPrefix);
  await fx?.close();
});

interface StoredUsage {
  status: string;
  rejection_reason: string | null;
  api_key_id: string | null;
  quantity: string | null;
  currency: string | null;
  price_book_id: string | null;
  price_book_version: number | null;
  unit_price: string | null;
  base_per_unit: number | null;
  window_seconds: number | null;
  low_balance_threshold: string | null;
  occurred_at: Date | null;
  opened_at: Date | null;
  published_at: Date | null;
  batch_id: string;
  envelope: unknown;
}

async function stored(eventId: string): Promise<StoredUsage | undefined> {
  const { rows } = await fx.admin.query<StoredUsage>(
    `SELECT status, rejection_reason, quantity::text AS quantity, currency, price_book_id, price_book_version, unit_price::text AS unit_price,
       base_per_unit, window_seconds, low_balance_threshold::text AS low_balance_threshold, api_key_id, occurred_at, opened_at, published_at, batch_id, envelope
     FROM usage_events WHERE event_id = $1`,
    [eventId],
  );
  return rows[0];
}

const ingested = (eventId: string) => waitFor(`usage ${eventId}`, () => stored(eventId));

/** How many messages of a product ingestion settled with an outcome, from its metrics. */
async function counted(outcome: string, product = 'tokenfactory'): Promise<number> {
  const { body } = await metrics.render();
  const line = body
    .split('\n')
    .find((l) => l.startsWith('aif_billing_usage_ingested_total{') && l.includes(`product="${product}"`) && l.includes(`outcome="${outcome}"`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** Every message of the product's stream delivered and acknowledged or terminated. */
async function drained(product: 'tokenfactory' | 'gpuaas' = 'tokenfactory'): Promise<void> {
  await waitFor(
    `the ${product} usage consumer to drain`,
    async () => {
      const info = await jsm.consumers.info(`${subjectPrefix.toUpperCase()}_${product.toUpperCase()}`, USAGE_CONSUMERS[product]);
      return info.num_pending === 0 && info.num_ack_pending === 0 ? true : undefined;
    },
    120_000,
  );
}

async function scope(): Promise<KnownScope> {
  return knownScope(fx.admin, { currency });
}

describe('usage ingestion', () => {
  it('ingests 10,000 concurrently published events once each, through 1,000 duplicates JetStream did not drop', async () => {
    const scopes = [await scope(), await scope(), await scope()];
    const extra = await knownProject(fx.admin, scopes[0]!);
    const targets: KnownScope[] = [...scopes, { ...scopes[0]!, ...extra }];
    const events = Array.from({ length: 10_000 }, (_, i) =>
      usageEnvelope(
        USAGE.tokenfactory.recorded(targets[i % targets.length]!, pointUsage({ quantity: BigInt(1 + ((i * 7919) % 100_000)), unit: i % 2 === 0 ? 'token_output' : 'token_input' })),
      ),
    );
    const expected = events.reduce((sum, event) => sum + BigInt((event.payload as { quantity: string }).quantity), 0n);
    // Republished with new correlation ids and no msg id, as a relay retrying after a lost ack would: JetStream keeps both.
    const duplicates = events.filter((_, i) => i % 10 === 3).map((event) => ({ ...event, correlationId: `retry-${randomUUID()}` }));
    const duplicatesBefore = await counted('duplicate');
    const batchesBefore = enqueued.length;

    const started = Date.now();
    await Promise.all([publisher.publishAll(events, { msgId: null }), publisher.publishAll(duplicates, { msgId: null })]);
    await drained();
    const seconds = (Date.now() - started) / 1000;

    const organizations = scopes.map((s) => s.organizationId);
    const { rows } = await fx.admin.query<{ n: number; status: string; total: string }>(
      `SELECT count(*)::int AS n, status, sum(quantity)::text AS total FROM usage_events WHERE organization_id = ANY($1::uuid[]) GROUP BY status`,
      [organizations],
    );
    expect(rows).toEqual([{ n: 10_000, status: 'accepted', total: expected.toString() }]);
    expect((await counted('duplicate')) - duplicatesBefore).toBe(1_000);
    const conflicts = await fx.admin.query('SELECT 1 FROM usage_conflicts WHERE organization_id = ANY($1::uuid[])', [organizations]);
    expect(conflicts.rowCount).toBe(0);

    // Every batch that accepted usage is recorded with its count and was handed to rating once.
    const batches = await fx.admin.query<{ id: string; accepted: number; events: number }>(
      `SELECT b.id, b.accepted, count(e.event_id)::int AS events
         FROM usage_batches b JOIN usage_events e ON e.batch_id = b.id
        WHERE e.organization_id = ANY($1::uuid[]) GROUP BY b.id, b.accepted`,
      [organizations],
    );
    expect(batches.rows.every((b) => b.accepted === b.events)).toBe(true);
    expect(batches.rows.reduce((sum, b) => sum + b.accepted, 0)).toBe(10_000);
    expect(enqueued.slice(batchesBefore).sort()).toEqual(batches.rows.map((b) => b.id).sort());
    // Not an assertion (no timing assertions): how fast this machine published and ingested 11,000 messages.
    console.info(`usage ingestion: 11,000 messages published and ingested in ${seconds.toFixed(1)} s (${Math.round(11_000 / seconds)}/s), ${batches.rowCount} batches`);
  }, 180_000);

  it('snapshots the price in force, the currency, the unit and the policy onto accepted usage', async () => {
    const s = await scope();
    const point = usageEnvelope(USAGE.tokenfactory.recorded(s, pointUsage({ quantity: 1234n, occurredAt: new Date(Date.now() - DAY_MS) })));
    const opened = usageEnvelope(USAGE.gpuaas.opened({ ...s, apiKeyId: 'key-ingestion-test' }, intervalUsage({ quantityPerSecond: 8n, resourceId: 'alloc-special' })));
    await publisher.publish(point);
    await publisher.publish(opened);

    expect(await ingested(point.id)).toMatchObject({
      status: 'accepted',
      quantity: '1234',
      currency,
      price_book_id: book.id,
      price_book_version: book.version,
      unit_price: '0.002000000000',
      base_per_unit: 1,
      window_seconds: null,
      low_balance_threshold: '1000',
      api_key_id: null,
      occurred_at: new Date((point.payload as { occurredAt: string }).occurredAt),
      opened_at: null,
      envelope: null,
    });
    const interval = await ingested(opened.id);
    expect(interval).toMatchObject({
      status: 'accepted',
      quantity: '8',
      unit_price: '99.000000000000',
      base_per_unit: 3600,
      window_seconds: 3600,
      api_key_id: 'key-ingestion-test',
      opened_at: new Date((opened.payload as { openedAt: string }).openedAt),
    });
    expect(interval!.published_at).toBeInstanceOf(Date);
    expect(enqueued).toContain(interval!.batch_id);
  });

  it('keeps an event id that comes back with other content as a conflict and never applies it', async () => {
    const s = await scope();
    const usage = pointUsage({ quantity: 10n });
    const original = usageEnvelope(USAGE.tokenfactory.recorded(s, usage));
    await publisher.publish(original);
    await ingested(original.id);

    const tampered = usageEnvelope(USAGE.tokenfactory.recorded(s, { ...usage, quantity: 99_999n }));
    expect(tampered.id).toBe(original.id);
    await publisher.publish(tampered, { msgId: null });
    const conflict = await waitFor('the conflict', async () => {
      const { rows } = await fx.admin.query<{ organization_id: string; envelope: EventEnvelope }>(
        'SELECT organization_id, envelope FROM usage_conflicts WHERE event_id = $1',
        [original.id],
      );
      return rows[0];
    });
    expect(conflict.organization_id).toBe(s.organizationId);
    expect(conflict.envelope.payload).toMatchObject({ quantity: '99999' });
    expect(await stored(original.id)).toMatchObject({ status: 'accepted', quantity: '10' });

    // The original again, only its travel details new: a duplicate, not another conflict.
    const duplicatesBefore = await counted('duplicate');
    await publisher.publish({ ...original, correlationId: 'another-hop' }, { msgId: null });
    await waitFor('the duplicate', async () => ((await counted('duplicate')) > duplicatesBefore ? true : undefined));
    const { rowCount } = await fx.admin.query('SELECT 1 FROM usage_conflicts WHERE event_id = $1', [original.id]);
    expect(rowCount).toBe(1);
  });

  it('puts usage of a project billing does not know yet back, and accepts it once the project arrives', async () => {
    const s = await scope();
    const projectId = randomUUID();
    const departmentId = randomUUID();
    const early = usageEnvelope(USAGE.tokenfactory.recorded({ ...s, projectId, departmentId }, pointUsage({ quantity: 5n })));
    const waitingBefore = await counted('waiting');
    await publisher.publish(early);
    await waitFor('usage put back', async () => ((await counted('waiting')) > waitingBefore ? true : undefined));
    expect(await stored(early.id)).toBeUndefined();

    await knownProject(fx.admin, s, { projectId, departmentId });
    expect(await ingested(early.id)).toMatchObject({ status: 'accepted', quantity: '5' });
  });

  it('rejects usage whose organization or project stayed unknown for the whole scope wait', async () => {
    const s = await scope();
    // An organization the hierarchy projection has not opened funds for is not known yet: it has no currency to be billed in.
    const withoutFunds = randomUUID();
    await fx.admin.query(`INSERT INTO organizations (id, slug, name, billing_currency, status, version) VALUES ($1, $2, 'No funds', $3, 'active', 1)`, [
      withoutFunds,
      `org-${withoutFunds.slice(0, 8)}`,
      currency,
    ]);
    const unopened = { ...s, organizationId: withoutFunds, ...(await knownProject(fx.admin, { organizationId: withoutFunds })) };
    const unknownProject = usageEnvelope(USAGE.tokenfactory.recorded({ ...s, projectId: randomUUID() }, pointUsage()));
    const unknownOrganization = usageEnvelope(USAGE.tokenfactory.recorded({ ...s, organizationId: randomUUID() }, pointUsage()));
    const unopenedOrganization = usageEnvelope(USAGE.tokenfactory.recorded(unopened, pointUsage()));
    const waitingBefore = await counted('waiting');
    await publisher.publishAll([unknownProject, unknownOrganization, unopenedOrganization]);
    await waitFor('usage put back', async () => ((await counted('waiting')) >= waitingBefore + 3 ? true : undefined));
    expect(await stored(unknownProject.id)).toBeUndefined();

    expect(await ingested(unknownProject.id)).toMatchObject({ status: 'rejected', rejection_reason: USAGE_REJECTION_REASONS.unknownProject });
    expect(await ingested(unknownOrganization.id)).toMatchObject({ status: 'rejected', rejection_reason: USAGE_REJECTION_REASONS.unknownOrganization });
    expect(await ingested(unopenedOrganization.id)).toMatchObject({ status: 'rejected', rejection_reason: USAGE_REJECTION_REASONS.unknownOrganization });
    // Each was put back after 1 s, 2 s and 5 s (the 8 s wait) before it was rejected.
    expect((await counted('waiting')) - waitingBefore).toBe(9);
  }, 60_000);

  it('counts the scope wait in its own deliveries: usage read long after it was published still waits for its project', async () => {
    const s = await scope();
    const projectId = randomUUID();
    const departmentId = randomUUID();
    const backlogged = usageEnvelope(USAGE.tokenfactory.recorded({ ...s, projectId, departmentId }, pointUsage({ quantity: 6n })));
    // billing reads it ten scope waits after it was stored, as after an outage.
    offsetMs += 10 * SCOPE_WAIT_MS;
    const waitingBefore = await counted('waiting');
    await publisher.publish(backlogged);
    await waitFor('usage put back', async () => ((await counted('waiting')) > waitingBefore ? true : undefined));
    expect(await stored(backlogged.id)).toBeUndefined();

    await knownProject(fx.admin, s, { projectId, departmentId });
    expect(await ingested(backlogged.id)).toMatchObject({ status: 'accepted', quantity: '6' });
  });

  it("prices usage in the currency of the organization's funds, which postings must match, whatever the organization row says later", async () => {
    const s = await scope();
    await fx.admin.query(`UPDATE organizations SET billing_currency = $2 WHERE id = $1`, [s.organizationId, currency === 'XTS' ? 'XXX' : 'XTS']);
    const usage = await publisher.publish(USAGE.tokenfactory.recorded(s, pointUsage({ quantity: 7n })));

    expect(await ingested(usage.id)).toMatchObject({ status: 'accepted', currency, price_book_id: book.id, unit_price: '0.002000000000' });
  });

  it('keys events, scopes and intervals by lower-case ids, however the product spelled them', async () => {
    const s = await scope();
    const usage = usageEnvelope(USAGE.tokenfactory.recorded(s, pointUsage({ quantity: 11n })));
    const shouted: EventEnvelope = {
      ...usage,
      id: usage.id.toUpperCase(),
      organizationId: s.organizationId.toUpperCase(),
      departmentId: s.departmentId.toUpperCase(),
      projectId: s.projectId.toUpperCase(),
      payload: { ...usage.payload, usageId: (usage.payload as { usageId: string }).usageId.toUpperCase() },
    };
    const acceptedBefore = await counted('accepted');
    await publisher.publish(shouted);
    const row = await ingested(usage.id);
    // The same event spelled in lower case is the same event: a duplicate, not a conflict.
    const duplicatesBefore = await counted('duplicate');
    await publisher.publish(usage, { msgId: null });
    await waitFor('the duplicate', async () => ((await counted('duplicate')) > duplicatesBefore ? true : undefined));

    expect(row).toMatchObject({ status: 'accepted', quantity: '11', currency });
    expect((await counted('accepted')) - acceptedBefore).toBe(1);
    const { rows } = await fx.admin.query<{ usage_id: string; accepted: number }>(
      'SELECT e.usage_id, b.accepted FROM usage_events e JOIN usage_batches b ON b.id = e.batch_id WHERE e.event_id = $1',
      [usage.id],
    );
    expect(rows).toEqual([{ usage_id: (usage.payload as { usageId: string }).usageId, accepted: 1 }]);
    expect(enqueued).toContain(row.batch_id);
    const conflicts = await fx.admin.query('SELECT 1 FROM usage_conflicts WHERE event_id = $1', [usage.id]);
    expect(conflicts.rowCount).toBe(0);
  });

  it('accepts every closing, at a time that has happened and not before its opening, and rejects usage ahead of its clock', async () => {
    const s = await scope();
    const now = clock.nowMs();
    const backwards = intervalUsage({ openedAt: new Date(now - 2 * 3_600_000) });
    const backwardsClose = usageEnvelope(USAGE.gpuaas.closed(s, backwards, backwards.openedAt));
    (backwardsClose.payload as { closedAt: string }).closedAt = new Date(now - 3 * 3_600_000).toISOString();
    // Its opening would be too late by now; its closing must still end the interval.
    const old = intervalUsage({ openedAt: new Date(now - 40 * DAY_MS) });
    const lateClose = usageEnvelope(USAGE.gpuaas.closed(s, old, new Date(now - 39 * DAY_MS)));
    const running = intervalUsage({ openedAt: new Date(now - 3_600_000) });
    const farClose = usageEnvelope(USAGE.gpuaas.closed(s, running, new Date('2100-01-01T00:00:00.000Z')));
    const soon = usageEnvelope(USAGE.tokenfactory.recorded(s, pointUsage({ occurredAt: new Date(now + 4 * MINUTE_MS) })));
    const future = usageEnvelope(USAGE.tokenfactory.recorded(s, pointUsage({ occurredAt: new Date(now + 10 * MINUTE_MS) })));
    const futureOpening = usageEnvelope(USAGE.gpuaas.opened(s, intervalUsage({ openedAt: new Date(now + 10 * MINUTE_MS) })));
    await publisher.publishAll([backwardsClose, lateClose, farClose, soon, future, futureOpening]);

    expect(await ingested(backwardsClose.id)).toMatchObject({ status: 'accepted', occurred_at: backwards.openedAt, opened_at: backwards.openedAt });
    expect(await ingested(lateClose.id)).toMatchObject({ status: 'accepted', occurred_at: new Date(now - 39 * DAY_MS) });
    const closedAt = (await ingested(farClose.id)).occurred_at!.getTime();
    expect(closedAt).toBeGreaterThanOrEqual(now);
    expect(closedAt).toBeLessThanOrEqual(clock.nowMs());
    expect(await ingested(soon.id)).toMatchObject({ status: 'accepted' });
    expect(await ingested(future.id)).toMatchObject({ status: 'rejected', rejection_reason: USAGE_REJECTION_REASONS.inFuture });
    expect(await ingested(futureOpening.id)).toMatchObject({ status: 'rejected', rejection_reason: USAGE_REJECTION_REASONS.inFuture });
  });

  it('rejects the closing of an interval whose opening was rejected, stored before or in the same batch', async () => {
    const s = await scope();
    const now = clock.nowMs();
    const stale = intervalUsage({ openedAt: new Date(now - 40 * DAY_MS) });
    const staleOpening = await publisher.publish(USAGE.gpuaas.opened(s, stale));
    expect(await ingested(staleOpening.id)).toMatchObject({ status: 'rejected', rejection_reason: USAGE_REJECTION_REASONS.tooLate });
    const staleClosing = await publisher.publish(USAGE.gpuaas.closed(s, stale, new Date(now - DAY_MS)));
    expect(await ingested(staleClosing.id)).toMatchObject({ status: 'rejected', rejection_reason: USAGE_REJECTION_REASONS.openingRejected });

    // Both in one batch (the consumer makes batches of what is at hand, so the domain is called directly).
    const direct = new UsageIngestion(fx.database.pool, new UsageIngestStore(fx.database.schema), {
      consumer: 'usage-ingestion-test',
      subjectPrefix,
      policy: defaultUsagePolicy,
      scopeWaitMs: SCOPE_WAIT_MS,
      clock,
    });
    const both = intervalUsage({ openedAt: new Date(now - 40 * DAY_MS) });
    const events = [usageEnvelope(USAGE.gpuaas.opened(s, both)), usageEnvelope(USAGE.gpuaas.closed(s, both, new Date(now - DAY_MS)))];
    const result = await direct.ingest(
      events.map((event) => ({ subject: prefixSubject(event.type, subjectPrefix), body: JSON.stringify(event), publishedAt: new Date(now), deliveries: 1, fallbackId: event.id })),
    );

    expect(result).toEqual({ batchId: null, outcomes: [{ outcome: 'rejected' }, { outcome: 'rejected' }] });
    expect(await stored(events[1]!.id)).toMatchObject({ status: 'rejected', rejection_reason: USAGE_REJECTION_REASONS.openingRejected });
  });

  it('meters quantities up to its bounds: 10^15 base units in a point event, 1,000,000 per second in an interval', async () => {
    const s = await scope();
    const point = await publisher.publish(USAGE.tokenfactory.recorded(s, pointUsage({ quantity: 1_000_000_000_000_000n })));
    const opening = await publisher.publish(USAGE.gpuaas.opened(s, intervalUsage({ quantityPerSecond: 1_000_000n })));

    expect(await ingested(point.id)).toMatchObject({ status: 'accepted', quantity: '1000000000000000' });
    expect(await ingested(opening.id)).toMatchObject({ status: 'accepted', quantity: '1000000' });
  });

  it('rejects with a stable reason what cannot be billed, and keeps the envelope', async () => {
    const s = await scope();
    const other = await scope();
    await fx.admin.query(
      `INSERT INTO usage_units (id, version, owner_product, display_name, base_unit, base_per_unit, precision, rating_category, lifecycle, description)
       VALUES ('request', 99, 'tokenfactory', 'Request', 'request', 1, 0, 'point', 'retired', 'A retired version, for the test.'),
              ('token_output', 2, 'tokenfactory', 'Output token', 'token', 1, 0, 'point', 'active', 'A version the price book does not price.')
       ON CONFLICT DO NOTHING`,
    );
    const cases: [string, EventEnvelope][] = [
      [USAGE_REJECTION_REASONS.tooLate, usageEnvelope(USAGE.tokenfactory.recorded(s, pointUsage({ occurredAt: new Date(clock.nowMs() - 36 * DAY_MS) })))],
      [USAGE_REJECTION_REASONS.unknownUnit, usageEnvelope(USAGE.tokenfactory.recorded(s, pointUsage({ unit: 'token_output', unitVersion: 7 })))],
      [USAGE_REJECTION_REASONS.retiredUnit, usageEnvelope(USAGE.tokenfactory.recorded(s, pointUsage({ unit: 'request', unitVersion: 99 })))],
      [USAGE_REJECTION_REASONS.unpriced, usageEnvelope(USAGE.tokenfactory.recorded(s, pointUsage({ unit: 'cached_token' })))],
      // The book prices token_output version 1 only.
      [USAGE_REJECTION_REASONS.unpriced, usageEnvelope(USAGE.tokenfactory.recorded(s, pointUsage({ unit: 'token_output', unitVersion: 2 })))],
      [USAGE_REJECTION_REASONS.unitMismatch, usageEnvelope(USAGE.tokenfactory.recorded(s, pointUsage({ unit: 'gpu_hour' })))],
      [USAGE_REJECTION_REASONS.unitMismatch, usageEnvelope(USAGE.gpuaas.opened(s, intervalUsage({ unit: 'token_output' })))],
      [USAGE_REJECTION_REASONS.invalidPayload, usageEnvelope(USAGE.tokenfactory.recorded(s, pointUsage({ quantity: 9_223_372_036_854_775_808n })))],
      [USAGE_REJECTION_REASONS.invalidPayload, usageEnvelope(USAGE.tokenfactory.recorded(s, pointUsage({ quantity: 1_000_000_000_000_001n })))],
      [USAGE_REJECTION_REASONS.invalidPayload, usageEnvelope(USAGE.gpuaas.opened(s, intervalUsage({ quantityPerSecond: 1_000_001n })))],
      // A project of another organization is never this one's, however long it waits.
      [USAGE_REJECTION_REASONS.unknownProject, usageEnvelope(USAGE.tokenfactory.recorded({ ...s, projectId: other.projectId }, pointUsage()))],
    ];
    for (const [, envelope] of cases) await publisher.publish(envelope);
    for (const [reason, envelope] of cases) {
      const row = await ingested(envelope.id);
      expect({ type: envelope.type, status: row.status, reason: row.rejection_reason }).toEqual({ type: envelope.type, status: 'rejected', reason });
      expect(row.envelope).toEqual(envelope);
    }
    const { rowCount } = await fx.admin.query("SELECT 1 FROM usage_events WHERE status = 'accepted' AND organization_id = $1", [s.organizationId]);
    expect(rowCount).toBe(0);
  });

  it('dead-letters a message that is not a usage envelope, and keeps the newest recount of a window', async () => {
    await publisher.publishRaw('tokenfactory.usage.recorded', 'not json at all');
    const s = await scope();
    const windowStart = new Date(Date.UTC(2026, 0, 1, 10));
    const summary = { unit: 'token_output', unitVersion: 1, windowStart, windowEnd: new Date(windowStart.getTime() + 3_600_000), eventCount: 10, quantity: 500n };
    await publisher.publish(USAGE.tokenfactory.windowSummary(s, { ...summary, recount: 2, eventCount: 12 }));
    await publisher.publish(USAGE.tokenfactory.windowSummary(s, { ...summary, recount: 1 }));
    await drained();

    const letters = await fx.admin.query<{ reason: string; envelope: unknown }>('SELECT reason, envelope FROM dead_letters WHERE consumer = $1', [
      USAGE_CONSUMERS.tokenfactory,
    ]);
    expect(letters.rows).toContainEqual({ reason: 'invalid_envelope', envelope: 'not json at all' });
    const { rows } = await fx.admin.query('SELECT event_count, quantity::text AS quantity, recount FROM usage_window_summaries WHERE organization_id = $1', [
      s.organizationId,
    ]);
    expect(rows).toEqual([{ event_count: 12, quantity: '500', recount: 2 }]);
  });

  it('acknowledges only after the commit: a batch whose transaction fails is delivered again and ingested once', async () => {
    await fx.admin.query(`
      CREATE TABLE usage_test_refusal (refuse boolean);
      INSERT INTO usage_test_refusal VALUES (true);
      CREATE FUNCTION usage_test_refuse() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM billing.usage_test_refusal) THEN RAISE EXCEPTION 'usage refused by the test'; END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER usage_test_refuse BEFORE INSERT ON usage_events FOR EACH STATEMENT EXECUTE FUNCTION usage_test_refuse();`);
    try {
      const s = await scope();
      const events = Array.from({ length: 20 }, () => usageEnvelope(USAGE.tokenfactory.recorded(s, pointUsage({ quantity: 3n }))));
      await publisher.publishAll(events);
      const stream = `${subjectPrefix.toUpperCase()}_TOKENFACTORY`;
      await waitFor('a redelivery', async () => ((await jsm.consumers.info(stream, USAGE_CONSUMERS.tokenfactory)).num_redelivered > 0 ? true : undefined));
      const before = await fx.admin.query('SELECT 1 FROM usage_events WHERE organization_id = $1', [s.organizationId]);
      expect(before.rowCount).toBe(0);

      await fx.admin.query('DELETE FROM usage_test_refusal');
      await drained();
      const { rows } = await fx.admin.query<{ n: number; total: string }>(
        "SELECT count(*)::int AS n, sum(quantity)::text AS total FROM usage_events WHERE organization_id = $1 AND status = 'accepted'",
        [s.organizationId],
      );
      expect(rows).toEqual([{ n: 20, total: '60' }]);
    } finally {
      await fx.admin.query('DROP TRIGGER usage_test_refuse ON usage_events; DROP FUNCTION usage_test_refuse(); DROP TABLE usage_test_refusal');
    }
  });
});

describe('a usage message that fails on every delivery', () => {
  const failingPrefix = uniqueEventSubjectPrefix();
  const MAX_DELIVER = 3;
  let failing: { stop(): Promise<void> };

  beforeAll(async () => {
    await ensureUsageStreams(nc, failingPrefix);
    failing = await startUsageIngestion({
      nc,
      subjectPrefix: failingPrefix,
      pool: fx.database.pool,
      schema: fx.database.schema,
      logger: createLogger({ service: 'billing-test', level: 'fatal' }),
      metrics: new ServiceMetrics('billing-usage-failing-test'),
      policy: defaultUsagePolicy,
      rating: { enqueue: async () => {} },
      batchSize: 10,
      scopeWaitMs: SCOPE_WAIT_MS,
      maxDeliver: MAX_DELIVER,
      clock,
    });
  }, 60_000);

  afterAll(async () => {
    await failing?.stop();
    await deleteEventStreams(failingPrefix);
  });

  it('is dead-lettered before its last delivery, which is left for a dead letter that could not be written the first time', async () => {
    // Usage is refused for good; the first dead letter written is refused too (a sequence counts attempts across rollbacks).
    await fx.admin.query(`
      CREATE SEQUENCE usage_test_letters;
      CREATE FUNCTION usage_test_refuse_usage() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'usage refused by the test'; END $$;
      CREATE FUNCTION usage_test_refuse_letter() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
      BEGIN
        IF nextval('billing.usage_test_letters') = 1 THEN RAISE EXCEPTION 'dead letter refused by the test'; END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER usage_test_refuse_usage BEFORE INSERT ON usage_events FOR EACH STATEMENT EXECUTE FUNCTION usage_test_refuse_usage();
      CREATE TRIGGER usage_test_refuse_letter BEFORE INSERT ON dead_letters FOR EACH STATEMENT EXECUTE FUNCTION usage_test_refuse_letter();`);
    try {
      const s = await scope();
      const usage = await new UsagePublisher(nc, failingPrefix).publish(USAGE.tokenfactory.recorded(s, pointUsage()));

      const letter = await waitFor('the dead letter', async () => {
        const { rows } = await fx.admin.query<{ reason: string; deliveries: number; detail: string }>(
          'SELECT reason, deliveries, detail FROM dead_letters WHERE consumer = $1 AND event_id = $2',
          [USAGE_CONSUMERS.tokenfactory, usage.id],
        );
        return rows[0];
      });
      expect(letter).toEqual({ reason: 'handler_failed', deliveries: MAX_DELIVER, detail: 'usage refused by the test' });
      expect(await stored(usage.id)).toBeUndefined();
    } finally {
      await fx.admin.query(`
        DROP TRIGGER usage_test_refuse_usage ON usage_events; DROP TRIGGER usage_test_refuse_letter ON dead_letters;
        DROP FUNCTION usage_test_refuse_usage(); DROP FUNCTION usage_test_refuse_letter(); DROP SEQUENCE usage_test_letters`);
    }
  });
});

describe('the policy usage is ingested under', () => {
  const organizationId = randomUUID();
  const departmentId = randomUUID();
  const projectId = randomUUID();
  const snapshot: PolicySnapshot = {
    version: 7,
    organizationId,
    planId: null,
    keys: Object.fromEntries(loadRegistryData().policyKeys.map(({ since: _since, ...key }) => [key.key, key])),
    layers: {
      global: { 'billing.usage.late_limit': 'P10D' },
      plan: {},
      organization: { 'billing.balance.low_warning_threshold': '25000', 'billing.window_seconds': 'PT30M' },
      departments: {},
      projects: { [projectId]: { departmentId, values: { 'billing.window_seconds': 'PT5M' } } },
    },
    publishedAt: new Date().toISOString(),
  };
  const policy = usagePolicyFrom(() => ({ policy: (id) => (id === organizationId ? snapshot : undefined) }));

  it("reads the most specific value of the organization's snapshot", () => {
    expect(policy.windowSeconds(organizationId, { projectId, departmentId })).toBe(300);
    expect(policy.windowSeconds(organizationId, { projectId: randomUUID(), departmentId })).toBe(1800);
    expect(policy.lateLimitMs(organizationId, { projectId, departmentId })).toBe(10 * DAY_MS);
    expect(policy.lowBalanceThreshold(organizationId)).toBe(25_000n);
  });

  it('falls back to the registry defaults where IAM published no snapshot', () => {
    const other = randomUUID();
    expect(policy.windowSeconds(other, { projectId })).toBe(3600);
    expect(policy.lateLimitMs(other, { projectId })).toBe(35 * DAY_MS);
    expect(policy.lowBalanceThreshold(other)).toBe(1000n);
    expect([defaultUsagePolicy.windowSeconds(other, {}), defaultUsagePolicy.lateLimitMs(other, {}), defaultUsagePolicy.lowBalanceThreshold(other)]).toEqual([
      3600,
      35 * DAY_MS,
      1000n,
    ]);
  });
});
