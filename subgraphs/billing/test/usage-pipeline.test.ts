/**
 * Issue 17, usage to money, end to end: products' usage published on real
 * JetStream (this test's own subject prefix and streams), ingested by
 * billing's consumers into Postgres, rated by a BullMQ worker (this test's
 * own Redis key prefix) and posted through the ledger. The amount is
 * computed here apart from billing (per organization, project and month:
 * floor of the exact sum) and must be what the ledger holds, to the minor
 * unit, with duplicates JetStream did not drop and an id reused with other
 * content never applied.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { EventEnvelope } from '@aifactory/contracts';
import { createLogger } from '@aifactory/logging';
import { ServiceMetrics } from '@aifactory/telemetry';
import { deleteEventStreams, deleteRedisKeys, TEST_NATS_URL, TEST_REDIS_URL, uniqueEventSubjectPrefix } from '@aifactory/testing';
import type { IntervalUsage } from '@aifactory/usage-emitter';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { BalanceAlerts } from '../src/domain/balance-alerts.js';
import { defaultUsagePolicy } from '../src/domain/usage-ingestion.js';
import { UsageRating } from '../src/domain/usage-rating.js';
import { BullRatingQueue } from '../src/workers/rating-queue.js';
import { startRatingWorker, type RunningRatingWorker } from '../src/workers/rating-worker.js';
import { startUsageIngestion, USAGE_CONSUMERS } from '../src/workers/usage-ingestion.js';
import { startBillingFixture, type BillingFixture } from './billing-fixture.js';
import { checkChains, expectedMinor, ratedState } from './rating-fixture.js';
import {
  ensureUsageStreams,
  insertPriceBook,
  knownProject,
  pointUsage,
  uniqueCurrency,
  USAGE,
  usageEnvelope,
  usageOrganization,
  UsagePublisher,
  waitFor,
  type KnownScope,
  type TestPrice,
} from './usage-fixture.js';

const subjectPrefix = uniqueEventSubjectPrefix();
const queuePrefix = `aiftest${randomBytes(5).toString('hex')}`;
const currency = uniqueCurrency();
const HOUR_MS = 3_600_000;
/** The window an opening snapshots: `billing.window_seconds`'s default, which defaultUsagePolicy gives. */
const WINDOW_MS = HOUR_MS;

/** Prices with fractional minor units, one of them for one resource only, so the remainder chains matter. */
const PRICES: readonly TestPrice[] = [
  { unit: 'token_output', unitPrice: '0.000123456789' },
  { unit: 'token_output', resourceType: 'model', resourceId: 'large', unitPrice: '0.000987654321' },
  { unit: 'token_input', unitPrice: '0.000033333333' },
  { unit: 'request', unitPrice: '0.7' },
  { unit: 'gpu_hour', unitPrice: '251.123456789012' },
];
/** base_per_unit of the units above (the registry's): a gpu_hour is 3600 GPU-seconds. */
const BASE_PER_UNIT: Readonly<Record<string, number>> = { token_output: 1, token_input: 1, request: 1, gpu_hour: 3600 };

/** The price of a unit for a resource as a price book resolves it: the resource's own, else the unit's `*` price. */
function priceOf(unit: string, resourceType: string, resourceId: string): string {
  const own = PRICES.find((p) => p.unit === unit && p.resourceType === resourceType && p.resourceId === resourceId);
  const any = PRICES.find((p) => p.unit === unit && p.resourceType === undefined);
  const price = own ?? any;
  if (!price) throw new Error(`no test price for ${unit}`);
  return price.unitPrice;
}

const periodOf = (at: Date) => `${at.toISOString().slice(0, 7)}-01`;

/** What should be billed: items of (project, month) chains, each an amount of base units at a price. */
class ExpectedBill {
  readonly chains = new Map<string, { quantity: bigint; unitPrice: string; basePerUnit: number }[]>();

  add(projectId: string, at: Date, quantity: bigint, unit: string, unitPrice: string): void {
    const key = `${projectId}:${periodOf(at)}`;
    const items = this.chains.get(key) ?? [];
    items.push({ quantity, unitPrice, basePerUnit: BASE_PER_UNIT[unit]! });
    this.chains.set(key, items);
  }

  /** A closed interval: each window the close reaches, full or (whole seconds) partial, in the month its window starts. */
  addInterval(projectId: string, openedAt: Date, closedAt: Date, quantityPerSecond: bigint, unit: string, unitPrice: string): void {
    for (let start = openedAt.getTime(); start < closedAt.getTime(); start += WINDOW_MS) {
      const seconds = BigInt(Math.floor((Math.min(start + WINDOW_MS, closedAt.getTime()) - start) / 1000));
      if (seconds > 0n) this.add(projectId, new Date(start), seconds * quantityPerSecond, unit, unitPrice);
    }
  }

  /** Whole minor units per chain: floor of the chain's exact sum. */
  posted(): Map<string, bigint> {
    return new Map([...this.chains].map(([key, items]) => [key, expectedMinor(items)]));
  }

  total(): bigint {
    return [...this.posted().values()].reduce((sum, minor) => sum + minor, 0n);
  }

  /** What rounding each item on its own would bill: the data must make it differ, or the chains would go untested. */
  roundedPerItem(): bigint {
    return [...this.chains.values()].flat().reduce((sum, item) => sum + expectedMinor([item]), 0n);
  }
}

let fx: BillingFixture;
let nc: NatsConnection;
let jsm: JetStreamManager;
let publisher: UsagePublisher;
let queue: BullRatingQueue;
let worker: RunningRatingWorker | undefined;
let ingestion: { stop(): Promise<void> } | undefined;
const metrics = new ServiceMetrics('billing-usage-pipeline-test');

beforeAll(async () => {
  fx = await startBillingFixture({ poolSize: 10 });
  nc = await connect({ servers: TEST_NATS_URL, name: 'billing-usage-pipeline-test' });
  jsm = await jetstreamManager(nc);
  await ensureUsageStreams(nc, subjectPrefix);
  publisher = new UsagePublisher(nc, subjectPrefix);
  await insertPriceBook(fx.admin, { currency, prices: PRICES });

  const logger = createLogger({ service: 'billing-usage-pipeline-test', level: 'error' });
  queue = new BullRatingQueue({ redisUrl: TEST_REDIS_URL, prefix: queuePrefix });
  const rating = new UsageRating(fx.database.pool, fx.ledger, { balanceAlerts: new BalanceAlerts({ subjectPrefix }) });
  worker = startRatingWorker({ rating, redisUrl: TEST_REDIS_URL, prefix: queuePrefix, concurrency: 2, lockDurationMs: 30_000, logger });
  await worker.ready();
  ingestion = await startUsageIngestion({
    nc,
    subjectPrefix,
    pool: fx.database.pool,
    schema: fx.database.schema,
    logger,
    metrics,
    policy: defaultUsagePolicy,
    rating: queue,
    batchSize: 1000,
    scopeWaitMs: 60_000,
  });
}, 60_000);

afterAll(async () => {
  await ingestion?.stop();
  await worker?.stop();
  await queue?.close();
  await nc?.close();
  await deleteEventStreams(subjectPrefix);
  await deleteRedisKeys(queuePrefix);
  await fx?.close();
});

const streamOf = (product: 'tokenfactory' | 'gpuaas') => `${subjectPrefix.toUpperCase()}_${product.toUpperCase()}`;

/** Every message of the product's stream delivered and acknowledged. */
async function drained(product: 'tokenfactory' | 'gpuaas'): Promise<void> {
  await waitFor(
    `the ${product} usage consumer to drain`,
    async () => {
      const info = await jsm.consumers.info(streamOf(product), USAGE_CONSUMERS[product]);
      return info.num_pending === 0 && info.num_ack_pending === 0 ? true : undefined;
    },
    120_000,
  );
}

/** Every accepted event of the organizations rated and every batch they were ingested in marked rated. */
async function allRated(organizationIds: readonly string[]): Promise<void> {
  await waitFor(
    'rating to finish',
    async () => {
      const { rows } = await fx.admin.query<{ unrated: number; batches: number }>(
        `SELECT (SELECT count(*) FROM usage_events e WHERE e.organization_id = ANY($1::uuid[]) AND e.status = 'accepted'
                   AND NOT EXISTS (SELECT 1 FROM usage_ratings r WHERE r.event_id = e.event_id))::int AS unrated,
                (SELECT count(*) FROM usage_batches b WHERE b.rated_at IS NULL
                   AND EXISTS (SELECT 1 FROM usage_events e WHERE e.batch_id = b.id AND e.organization_id = ANY($1::uuid[])))::int AS batches`,
        [organizationIds],
      );
      return rows[0]!.unrated === 0 && rows[0]!.batches === 0 ? true : undefined;
    },
    120_000,
  );
}

/** Messages ingestion settled as duplicates, over every product (its metrics). */
async function duplicatesSettled(): Promise<number> {
  const { body } = await metrics.render();
  return body
    .split('\n')
    .filter((line) => line.startsWith('aif_billing_usage_ingested_total{') && line.includes('outcome="duplicate"'))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

/** Deterministic shuffle (a closing may go out before its opening). */
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  let seed = 17;
  for (let i = out.length - 1; i > 0; i -= 1) {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('usage to money', () => {
  it('bills 10,000 concurrently published events, 10% of them sent twice without msg ids, exactly to the minor unit', async () => {
    // Four organizations, two projects each; one pays with promotional credit first.
    const scopes: KnownScope[] = [];
    for (let i = 0; i < 4; i += 1) {
      const scope = await usageOrganization(fx, { currency, paid: 1_000_000_000n, promotional: i === 0 ? 50_000n : 0n });
      scopes.push(scope, { ...scope, ...(await knownProject(fx.admin, scope)) });
    }
    const organizationIds = [...new Set(scopes.map((scope) => scope.organizationId))];
    const fundsBefore = new Map<string, bigint>();
    for (const id of organizationIds) fundsBefore.set(id, (await ratedState(fx.admin, id)).funds);

    const bill = new ExpectedBill();
    // Whole seconds, a minute back: windows and partial seconds are unambiguous, and every close is in the past.
    const base = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    const events: EventEnvelope[] = [];
    const units = ['token_output', 'token_input', 'request'] as const;
    for (let i = 0; i < 9_000; i += 1) {
      const scope = scopes[i % scopes.length]!;
      const unit = units[i % units.length]!;
      const resourceId = unit === 'token_output' && i % 2 === 0 ? 'large' : 'llama';
      const quantity = unit === 'request' ? BigInt(1 + (i % 5)) : BigInt(1 + ((i * 7_919) % 50_000));
      const occurredAt = new Date(base - ((i * 37) % 7_200) * 1000 - (i % 1000));
      events.push(usageEnvelope(USAGE.tokenfactory.recorded(scope, pointUsage({ unit, resourceId, quantity, occurredAt }))));
      bill.add(scope.projectId, occurredAt, quantity, unit, priceOf(unit, 'model', resourceId));
    }
    for (let k = 0; k < 500; k += 1) {
      const scope = scopes[(k * 3) % scopes.length]!;
      const openedAt = new Date(base - (600 + ((k * 97) % 9_000)) * 1000);
      const closedAt = new Date(openedAt.getTime() + (1 + ((k * 53) % Math.floor((base - openedAt.getTime()) / 1000))) * 1000);
      const interval: IntervalUsage = {
        usageId: randomUUID(),
        resourceType: 'gpu_allocation',
        resourceId: `alloc-${k}`,
        unit: 'gpu_hour',
        unitVersion: 1,
        openedAt,
        quantityPerSecond: BigInt(1 + (k % 8)),
      };
      events.push(usageEnvelope(USAGE.gpuaas.opened(scope, interval)), usageEnvelope(USAGE.gpuaas.closed(scope, interval, closedAt)));
      bill.addInterval(scope.projectId, openedAt, closedAt, interval.quantityPerSecond!, 'gpu_hour', priceOf('gpu_hour', 'gpu_allocation', interval.resourceId));
    }
    expect(events.length).toBe(10_000);
    expect(new Set(events.map((event) => event.id)).size).toBe(10_000);
    // Sent again with new correlation ids and no msg id, as a relay retrying after a lost ack would: JetStream keeps both.
    const mixed = shuffled(events);
    const duplicates = mixed.filter((_, i) => i % 10 === 3).map((event) => ({ ...event, correlationId: `retry-${randomUUID()}` }));

    const started = Date.now();
    await Promise.all([publisher.publishAll(mixed, { msgId: null }), publisher.publishAll(duplicates, { msgId: null })]);
    const stored = (await jsm.streams.info(streamOf('tokenfactory'))).state.messages + (await jsm.streams.info(streamOf('gpuaas'))).state.messages;
    expect(stored).toBe(11_000);
    await drained('tokenfactory');
    await drained('gpuaas');
    await allRated(organizationIds);
    const seconds = (Date.now() - started) / 1000;

    const { rows } = await fx.admin.query<{ status: string; n: number; rated: number }>(
      `SELECT e.status, count(*)::int AS n, count(r.event_id)::int AS rated
         FROM usage_events e LEFT JOIN usage_ratings r ON r.event_id = e.event_id
        WHERE e.organization_id = ANY($1::uuid[]) GROUP BY e.status`,
      [organizationIds],
    );
    expect(rows).toEqual([{ status: 'accepted', n: 10_000, rated: 10_000 }]);
    const conflicts = await fx.admin.query('SELECT 1 FROM usage_conflicts WHERE organization_id = ANY($1::uuid[])', [organizationIds]);
    expect(conflicts.rowCount).toBe(0);
    // JetStream kept both copies (no msg ids), so billing's own check is what dropped the second.
    expect(await duplicatesSettled()).toBe(1_000);

    // Per chain, as the remainder chains posted it, and in the ledger: revenue gained and funds lost what was computed here.
    const expected = bill.posted();
    const posted = new Map<string, bigint>();
    let revenue = 0n;
    let spent = 0n;
    for (const id of organizationIds) {
      const state = await ratedState(fx.admin, id);
      for (const [key, chain] of checkChains(state.steps)) posted.set(key, chain.posted);
      revenue += state.revenue;
      spent += fundsBefore.get(id)! - state.funds;
    }
    expect(new Map([...posted].sort())).toEqual(new Map([...expected].sort()));
    expect({ revenue, spent }).toEqual({ revenue: bill.total(), spent: bill.total() });
    expect(bill.roundedPerItem()).not.toBe(bill.total());
    expect(await queue.deadLetters()).toBe(0);
    // Not an assertion (no timing assertions): how fast this machine took 11,000 messages to the ledger.
    console.info(`usage pipeline: 11,000 messages published, ingested, rated and posted in ${seconds.toFixed(1)} s; billed ${bill.total()} minor units`);
  }, 180_000);

  it('keeps an id reused with a different payload as a conflict and never bills it', async () => {
    const scope = await usageOrganization(fx, { currency, paid: 1_000_000n });
    const before = (await ratedState(fx.admin, scope.organizationId)).funds;
    const usage = pointUsage({ unit: 'request', quantity: 10n });
    const original = await publisher.publish(USAGE.tokenfactory.recorded(scope, usage));
    await ratedEvents([original.id]);

    const tampered = usageEnvelope(USAGE.tokenfactory.recorded(scope, { ...usage, quantity: 99_999_999n }));
    expect(tampered.id).toBe(original.id);
    const fresh = usageEnvelope(USAGE.tokenfactory.recorded(scope, pointUsage({ unit: 'request', quantity: 3n })));
    // No msg id: JetStream would drop the reused id inside its duplicate window, and billing's own check is what is tested.
    await Promise.all([publisher.publish(tampered, { msgId: null }), publisher.publish(fresh, { msgId: null })]);
    const conflict = await waitFor(
      'the conflict',
      async () => {
        const { rows } = await fx.admin.query<{ envelope: EventEnvelope }>('SELECT envelope FROM usage_conflicts WHERE event_id = $1', [original.id]);
        return rows[0];
      },
      60_000,
    );
    expect(conflict.envelope.payload).toMatchObject({ quantity: '99999999' });
    await drained('tokenfactory');
    await ratedEvents([fresh.id]);
    await allRated([scope.organizationId]);

    const { rows } = await fx.admin.query<{ event_id: string; quantity: string }>(
      "SELECT e.event_id, e.quantity::text AS quantity FROM usage_events e WHERE e.organization_id = $1 AND e.status = 'accepted' ORDER BY e.quantity",
      [scope.organizationId],
    );
    expect(rows).toEqual([
      { event_id: fresh.id, quantity: '3' },
      { event_id: original.id, quantity: '10' },
    ]);
    // 13 requests at 0.7: 9.1, so 9 minor units; the tampered 99,999,999 requests would have been 69,999,999.
    const total = expectedMinor([{ quantity: 13n, unitPrice: priceOf('request', 'model', 'llama'), basePerUnit: 1 }]);
    expect(total).toBe(9n);
    const state = await ratedState(fx.admin, scope.organizationId);
    expect({ revenue: state.revenue, spent: before - state.funds, ratings: state.ratings }).toEqual({ revenue: total, spent: total, ratings: 2 });
  }, 120_000);
});

/** The events' usage_ratings rows exist. */
async function ratedEvents(eventIds: readonly string[]): Promise<void> {
  await waitFor(
    `${eventIds.length} events rated`,
    async () => {
      const { rows } = await fx.admin.query<{ n: number }>('SELECT count(*)::int AS n FROM usage_ratings WHERE event_id = ANY($1::uuid[])', [eventIds]);
      return rows[0]!.n === eventIds.length ? true : undefined;
    },
    60_000,
  );
}
