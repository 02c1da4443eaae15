/**
 * Test helpers for rating (issue 17): accepted usage written straight into
 * usage_events and usage_batches, as ingestion leaves it (price and policy
 * snapshot filled), so rating is tested without NATS; the billing fixture
 * and rater a rating test file shares (useRatingHarness); and the
 * independent arithmetic the tests compare rating's results with.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '@aifactory/clock';
import type { Actor } from '@aifactory/contracts';
import type { Queryable } from '@aifactory/events';
import { uniqueEventSubjectPrefix } from '@aifactory/testing';
import { alertingLedger } from '../src/domain/alerting-ledger.js';
import { BalanceAlerts } from '../src/domain/balance-alerts.js';
import { UsageRating } from '../src/domain/usage-rating.js';
import { startBillingFixture, type BillingFixture } from './billing-fixture.js';
import { waitFor } from './usage-fixture.js';

/** The billing fixture and rater of a rating test file; `fx` and `rating` are set once the file's beforeAll ran. */
export interface RatingHarness {
  fx: BillingFixture;
  /** Rates as billing's processes do: its ledger checks balance alerts (alertingLedger), both at the file's clock. */
  rating: UsageRating;
  /** Another rater on the same database, as a second process would be. */
  newRater(): UsageRating;
}

/** Starts a billing fixture and its rater before the file's tests, and closes the fixture after them. */
export function useRatingHarness(clock: Clock): RatingHarness {
  const subjectPrefix = uniqueEventSubjectPrefix();
  const harness = {
    newRater: () => {
      const balanceAlerts = new BalanceAlerts({ subjectPrefix });
      return new UsageRating(harness.fx.database.pool, alertingLedger(harness.fx.database.pool, balanceAlerts, clock), { balanceAlerts, clock });
    },
  } as RatingHarness;
  beforeAll(async () => {
    harness.fx = await startBillingFixture({ poolSize: 6 });
    harness.rating = harness.newRater();
  });
  afterAll(async () => {
    await harness.fx?.close();
  });
  return harness;
}

/** A price snapshot as ingestion records it on an accepted event. */
export interface SnapshotPrice {
  currency: string;
  priceBookId: string;
  priceBookVersion: number;
  /** Minor units per unit, a decimal with up to 12 places. */
  unitPrice: string;
  basePerUnit: number;
}

export interface UsageScope {
  organizationId: string;
  departmentId: string;
  projectId: string;
}

export interface AcceptedUsage {
  eventId?: string;
  kind: 'recorded' | 'opened' | 'closed';
  product?: string;
  scope: UsageScope;
  actor?: Actor;
  /** The API key the usage was made with; none by default. */
  apiKeyId?: string;
  usageId?: string;
  resourceType?: string;
  resourceId?: string;
  unitId?: string;
  /** Point: base units; intervals: base units per second. */
  quantity: bigint;
  /** Point: occurredAt; opened: openedAt; closed: closedAt. */
  occurredAt: Date;
  /** Opened and closed: the interval's opening. */
  openedAt?: Date;
  price: SnapshotPrice;
  /** Opened: `billing.window_seconds` at the opening. */
  windowSeconds?: number;
  lowBalanceThreshold?: bigint;
}

/** A price of a book that is not in price_books (rating reads only the snapshot). */
export function snapshotPrice(unitPrice: string, options: { currency?: string; basePerUnit?: number; priceBookVersion?: number } = {}): SnapshotPrice {
  return { currency: options.currency ?? 'USD', priceBookId: randomUUID(), priceBookVersion: options.priceBookVersion ?? 1, unitPrice, basePerUnit: options.basePerUnit ?? 1 };
}

export const serviceAccount: Actor = { type: 'service_account', id: 'sa-rating-test' };

/** A Token Factory point event: `quantity` output tokens. */
export function pointEvent(scope: UsageScope, price: SnapshotPrice, quantity: bigint, occurredAt: Date, extra: Partial<AcceptedUsage> = {}): AcceptedUsage {
  return { kind: 'recorded', product: 'tokenfactory', unitId: 'token_output', resourceType: 'model', resourceId: 'llama', scope, quantity, occurredAt, price, ...extra };
}

/** A GPUaaS interval's opening: `gpus` GPU-seconds per second, windows of `windowSeconds`. */
export function openedEvent(scope: UsageScope, price: SnapshotPrice, usageId: string, openedAt: Date, options: { gpus?: bigint; windowSeconds?: number } = {}): AcceptedUsage {
  return {
    kind: 'opened',
    product: 'gpuaas',
    unitId: 'gpu_hour',
    resourceType: 'gpu_allocation',
    resourceId: `alloc-${usageId.slice(0, 8)}`,
    scope,
    usageId,
    quantity: options.gpus ?? 1n,
    occurredAt: openedAt,
    openedAt,
    price,
    windowSeconds: options.windowSeconds ?? 3600,
  };
}

/** The interval's closing; its price and window length are what ingestion saw at the time, which rating must not use. */
export function closedEvent(
  scope: UsageScope,
  price: SnapshotPrice,
  usageId: string,
  openedAt: Date,
  closedAt: Date,
  options: { gpus?: bigint; windowSeconds?: number } = {},
): AcceptedUsage {
  return { ...openedEvent(scope, price, usageId, openedAt, options), kind: 'closed', occurredAt: closedAt };
}

/** Inserts accepted events and their batch as one ingestion transaction would; returns the batch id and event ids. */
export async function insertBatch(db: Queryable, events: readonly AcceptedUsage[], options: { batchId?: string; receivedAt?: Date } = {}): Promise<{ batchId: string; eventIds: string[] }> {
  const batchId = options.batchId ?? randomUUID();
  const rows = events.map((event) => ({ ...event, eventId: event.eventId ?? randomUUID(), usageId: event.usageId ?? randomUUID(), actor: event.actor ?? serviceAccount }));
  if (rows.length > 0) {
    await db.query(
      `INSERT INTO usage_events (event_id, fingerprint, event_type, product, kind, status, organization_id, department_id, project_id, actor_type, actor_id,
         api_key_id, usage_id, resource_type, resource_id, unit_id, unit_version, quantity, occurred_at, opened_at, currency, price_book_id, price_book_version,
         unit_price, base_per_unit, window_seconds, low_balance_threshold, correlation_id, batch_id, published_at)
       SELECT u.event_id, 'fingerprint-' || u.event_id::text, u.product || '.usage.' || u.kind, u.product, u.kind, 'accepted', u.organization_id,
         u.department_id, u.project_id, u.actor_type, u.actor_id, u.api_key_id, u.usage_id, u.resource_type, u.resource_id, u.unit_id, 1, u.quantity, u.occurred_at,
         u.opened_at, u.currency, u.price_book_id, u.price_book_version, u.unit_price, u.base_per_unit, u.window_seconds, u.low_balance_threshold,
         'corr-rating-test', $23, u.occurred_at
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::uuid[], $6::uuid[], $7::text[], $8::text[], $9::uuid[], $10::text[], $11::text[],
         $12::text[], $13::int8[], $14::timestamptz[], $15::timestamptz[], $16::bpchar[], $17::uuid[], $18::int[], $19::numeric[], $20::int[], $21::int[],
         $22::int8[], $24::text[])
         AS u(event_id, product, kind, organization_id, department_id, project_id, actor_type, actor_id, usage_id, resource_type, resource_id, unit_id,
           quantity, occurred_at, opened_at, currency, price_book_id, price_book_version, unit_price, base_per_unit, window_seconds, low_balance_threshold, api_key_id)`,
      [
        rows.map((e) => e.eventId),
        rows.map((e) => e.product ?? 'tokenfactory'),
        rows.map((e) => e.kind),
        rows.map((e) => e.scope.organizationId),
        rows.map((e) => e.scope.departmentId),
        rows.map((e) => e.scope.projectId),
        rows.map((e) => e.actor.type),
        rows.map((e) => e.actor.id),
        rows.map((e) => e.usageId),
        rows.map((e) => e.resourceType ?? 'model'),
        rows.map((e) => e.resourceId ?? 'llama'),
        rows.map((e) => e.unitId ?? 'token_output'),
        rows.map((e) => e.quantity.toString()),
        rows.map((e) => e.occurredAt),
        rows.map((e) => e.openedAt ?? null),
        rows.map((e) => e.price.currency),
        rows.map((e) => e.price.priceBookId),
        rows.map((e) => e.price.priceBookVersion),
        rows.map((e) => e.price.unitPrice),
        rows.map((e) => e.price.basePerUnit),
        rows.map((e) => e.windowSeconds ?? null),
        rows.map((e) => (e.lowBalanceThreshold === undefined ? null : e.lowBalanceThreshold.toString())),
        batchId,
        rows.map((e) => e.apiKeyId ?? null),
      ],
    );
  }
  await db.query('INSERT INTO usage_batches (id, accepted, received_at) VALUES ($1, $2, $3)', [batchId, rows.length, options.receivedAt ?? new Date()]);
  return { batchId, eventIds: rows.map((row) => row.eventId) };
}

const PRICE_SCALE = 10n ** 12n;

/**
 * The whole minor units `quantity` base units cost at `unitPrice` per unit of
 * `basePerUnit`, summed over items and floored, computed apart from rating's
 * own arithmetic: in 10^-12 minor units, divided by base_per_unit once at
 * the end.
 */
export function expectedMinor(items: readonly { quantity: bigint; unitPrice: string; basePerUnit: number }[]): bigint {
  let numerator = 0n;
  for (const item of items) {
    const [whole, fraction = ''] = item.unitPrice.split('.');
    const picoPrice = BigInt(whole!) * PRICE_SCALE + BigInt(fraction.padEnd(12, '0'));
    numerator += item.quantity * picoPrice * BigInt(3600 / item.basePerUnit);
  }
  const denominator = PRICE_SCALE * 3600n;
  const quotient = numerator / denominator;
  return numerator < 0n && quotient * denominator !== numerator ? quotient - 1n : quotient;
}

/** What rating left for an organization: its chain steps, lines, ratings and the ledger's view of it. */
export async function ratedState(db: Queryable, organizationId: string) {
  const steps = (
    await db.query<{ id: string; project_id: string; period: string; step: number; exact_units: string; posted: string; delta: string; lines: number; ledger_posting_id: string | null }>(
      `SELECT id, project_id, period::text AS period, step, exact_units::text AS exact_units, posted::text AS posted, delta::text AS delta, lines, ledger_posting_id
       FROM usage_postings WHERE organization_id = $1 ORDER BY project_id, period, step`,
      [organizationId],
    )
  ).rows;
  const counts = (
    await db.query<{ lines: number; ratings: number; line_quantity: string; funds: string; usage_postings: number; spent: string }>(
      `SELECT (SELECT count(*) FROM usage_lines WHERE organization_id = $1)::int AS lines,
              (SELECT count(*) FROM usage_ratings WHERE organization_id = $1)::int AS ratings,
              (SELECT coalesce(sum(quantity), 0) FROM usage_lines WHERE organization_id = $1)::text AS line_quantity,
              coalesce((SELECT paid + promotional FROM organization_funds WHERE organization_id = $1), 0)::text AS funds,
              (SELECT count(*) FROM postings WHERE organization_id = $1 AND kind IN ('usage', 'usage_adjustment'))::int AS usage_postings,
              (SELECT coalesce(sum(spent), 0) FROM budget_spend WHERE pool_level = 'organization' AND pool_id = $1)::text AS spent`,
      [organizationId],
    )
  ).rows[0]!;
  // Revenue this organization's usage postings moved: credits to revenue minus debits from it.
  const revenue = (
    await db.query<{ net: string }>(
      `SELECT (coalesce(sum(t.amount) FILTER (WHERE a.id = t.credit_account_id), 0) - coalesce(sum(t.amount) FILTER (WHERE a.id = t.debit_account_id), 0))::text AS net
       FROM transfers t JOIN postings p ON p.id = t.posting_id
       JOIN accounts a ON a.kind = 'revenue' AND a.id IN (t.debit_account_id, t.credit_account_id)
       WHERE p.organization_id = $1 AND p.kind IN ('usage', 'usage_adjustment')`,
      [organizationId],
    )
  ).rows[0]!;
  return {
    steps,
    lines: counts.lines,
    ratings: counts.ratings,
    lineQuantity: BigInt(counts.line_quantity),
    funds: BigInt(counts.funds),
    usagePostings: counts.usage_postings,
    spent: BigInt(counts.spent),
    revenue: BigInt(revenue.net),
  };
}

/** Each chain's steps are 1..n with no gap, each posting floor(exact) minus the step before; returns what each chain posted in all. */
export function checkChains(steps: Awaited<ReturnType<typeof ratedState>>['steps']): Map<string, { exactUnits: bigint; posted: bigint }> {
  const chains = new Map<string, { exactUnits: bigint; posted: bigint; step: number }>();
  for (const step of steps) {
    const key = `${step.project_id}:${step.period}`;
    const before = chains.get(key) ?? { exactUnits: 0n, posted: 0n, step: 0 };
    const exactUnits = BigInt(step.exact_units);
    const posted = BigInt(step.posted);
    const floor = exactUnits >= 0n ? exactUnits / 3_600_000_000_000_000n : -((-exactUnits + 3_600_000_000_000_000n - 1n) / 3_600_000_000_000_000n);
    if (step.step !== before.step + 1) throw new Error(`chain ${key} goes from step ${before.step} to ${step.step}`);
    if (posted !== floor) throw new Error(`chain ${key} step ${step.step} posted ${posted}, floor of its exact total is ${floor}`);
    if (BigInt(step.delta) !== posted - before.posted) throw new Error(`chain ${key} step ${step.step} delta ${step.delta} is not ${posted - before.posted}`);
    if ((step.ledger_posting_id === null) !== (step.delta === '0')) throw new Error(`chain ${key} step ${step.step} ledger posting does not match its delta`);
    chains.set(key, { exactUnits, posted, step: step.step });
  }
  return new Map([...chains].map(([key, { exactUnits, posted }]) => [key, { exactUnits, posted }]));
}

/**
 * What rating left for an organization's `events` (point events, or any
 * whose quantity is what should be billed) beside what it should have left:
 * per chain (project and month) floor of the exact sum, computed apart from
 * rating, and the same total in the ledger's revenue, the funds and the
 * budget; one line and one rating per event.
 */
export async function ratedTotals(db: Queryable, organizationId: string, events: readonly AcceptedUsage[]) {
  const state = await ratedState(db, organizationId);
  const chains = checkChains(state.steps);
  const grouped = new Map<string, AcceptedUsage[]>();
  for (const event of events) {
    const key = `${event.scope.projectId}:${event.occurredAt.toISOString().slice(0, 7)}-01`;
    grouped.set(key, [...(grouped.get(key) ?? []), event]);
  }
  const expectedChains = new Map(
    [...grouped].map(([key, chain]) => [key, expectedMinor(chain.map((event) => ({ quantity: event.quantity, unitPrice: event.price.unitPrice, basePerUnit: event.price.basePerUnit })))]),
  );
  const total = [...expectedChains.values()].reduce((sum, posted) => sum + posted, 0n);
  return {
    actual: {
      chains: new Map([...chains].map(([key, chain]) => [key, chain.posted])),
      lines: state.lines,
      ratings: state.ratings,
      lineQuantity: state.lineQuantity,
      revenue: state.revenue,
      funds: state.funds,
      spent: state.spent,
    },
    expected: {
      chains: expectedChains,
      lines: events.length,
      ratings: events.length,
      lineQuantity: events.reduce((sum, event) => sum + event.quantity, 0n),
      revenue: total,
      funds: -total,
      spent: total,
    },
  };
}

/** usage-fixture's `waitFor` with the longer wait of a rating process (it starts, rates and dies as a separate process). */
export function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  return waitFor(what, probe, timeoutMs);
}
