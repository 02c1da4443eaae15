import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { RunningGateway } from '@aifactory/gateway/server';
import type { FakeStripe, StripeEventJson } from '@aifactory/stripe-fake';
import type pg from 'pg';
import { BENCH_ADMIN_GROUP, startBenchPlatform } from './bench-platform.js';
import { inBenchWorkspace } from './bench-run.js';
import { percentile } from './load.js';
import { fmt, measureSideBySide, positiveInt, until, type SideRow } from './side-by-side.js';
import { progress } from './teardown.js';

const USAGE =
  'usage: npm run bench -- webhooks [--sessions 400 --organizations 20 --deliveries 2000 --disputes 20 --refunds 20 ' +
  '--concurrency 16 --probe 2 --duration 6 --rounds 4 --pool 10]\n';
/** Seed 002: Stripe webhook processing lag p99 under 60 s after receipt. */
const LAG_BUDGET_SECONDS = 60;
/** With nothing processed for this long once the burst was answered, the run gives up. */
const STALL_MS = 120_000;
const POLL_MS = 100;
const CURRENCY = 'USD';
/** Within billing.checkout.min_amount and max_amount (500 and 1,000,000 by default). */
const MIN_AMOUNT = 500;
const AMOUNT_SPREAD = 99_500;

const CREATE_ORGANIZATION = 'mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { id } }';
const CHECKOUT = 'mutation($input: CreateCheckoutSessionInput!) { createCheckoutSession(input: $input) { id amount stripeSessionId } }';
/** The plain GraphQL request the webhook path is compared with: through the gateway to billing alone, one indexed read. */
const PLAIN_READ = 'query($id: ID!) { paymentSession(id: $id) { id status } }';

interface WebhookBenchOptions {
  sessions: number;
  organizations: number;
  /** Webhook POSTs in the burst: one per fresh event, the rest re-deliveries of events already answered. */
  deliveries: number;
  disputes: number;
  refunds: number;
  /** Deliveries in flight at once during the burst, and clients of the side-by-side part. */
  concurrency: number;
  /** GraphQL clients running beside the burst. */
  probe: number;
  durationMs: number;
  rounds: number;
  pool: number;
}

function parseOptions(args: string[]): WebhookBenchOptions | undefined {
  const { values } = parseArgs({
    args,
    options: {
      sessions: { type: 'string', default: '400' },
      organizations: { type: 'string', default: '20' },
      deliveries: { type: 'string', default: '2000' },
      disputes: { type: 'string', default: '20' },
      refunds: { type: 'string', default: '20' },
      concurrency: { type: 'string', default: '16' },
      probe: { type: 'string', default: '2' },
      duration: { type: 'string', default: '6' },
      rounds: { type: 'string', default: '4' },
      pool: { type: 'string', default: '10' },
    },
  });
  const count = (value: string | undefined) => (value === '0' ? 0 : positiveInt(value));
  const options = {
    sessions: positiveInt(values.sessions),
    organizations: positiveInt(values.organizations),
    deliveries: positiveInt(values.deliveries),
    disputes: count(values.disputes),
    refunds: count(values.refunds),
    concurrency: positiveInt(values.concurrency),
    probe: count(values.probe),
    durationMs: (positiveInt(values.duration) ?? 0) * 1000 || undefined,
    rounds: positiveInt(values.rounds),
    pool: positiveInt(values.pool),
  };
  if (Object.values(options).some((value) => value === undefined)) {
    process.stderr.write(USAGE);
    return undefined;
  }
  const parsed = options as WebhookBenchOptions;
  if (parsed.disputes + parsed.refunds > parsed.sessions) {
    process.stderr.write(`bench: --disputes and --refunds each take a session of their own: at most ${parsed.sessions} together\n${USAGE}`);
    return undefined;
  }
  return parsed;
}

interface Session {
  id: string;
  organizationId: string;
  amount: bigint;
  stripeSessionId: string;
  /** Set by the fake when the checkout completes. */
  paymentIntentId?: string;
}

/** One webhook POST of the burst as this process timed it. */
interface Ack {
  kind: 'completion' | 'dispute' | 'refund' | 'duplicate';
  ms: number;
  ok: boolean;
}

interface Progress {
  stored: number;
  processed: number;
  pending: number;
  dead: number;
}

/**
 * `npm run bench -- webhooks` (issue 18, seed 002: webhook processing lag
 * p99 < 60 s after receipt). The whole platform in this process with its
 * fake Stripe: N checkout sessions made through the gateway's GraphQL as
 * billing's users make them (Idempotency-Key), then completed at the fake in
 * one burst: each completion's checkout.session.completed, a share of
 * charge.dispute.created and charge.refunded for other sessions, and
 * re-deliveries of events already answered, `--concurrency` POSTs in flight
 * through the gateway's /webhooks/stripe. Measured: the webhook's answer
 * (ack) time, the processing lag from billing's own rows
 * (stripe_events.processed_at - received_at), the throughput, and the proof
 * that nothing was lost or credited twice. Beside the burst, GraphQL clients
 * time a plain request under the same load; then, side by side in
 * alternating rounds, a fresh webhook against the same plain request.
 */
export async function runWebhookBench(args: string[]): Promise<number> {
  const options = parseOptions(args);
  if (!options) return 2;
  return inBenchWorkspace('webhooks', async (workDir, teardown) => {
    const { platform, db, sign } = await startBenchPlatform({ name: 'webhooks', workDir, teardown, poolSize: options.pool });
    const { gateway, stripe } = platform;
    const admin = await db.admin();
    await until('the access read model', () => (gateway.accessModel.isFresh() ? true : undefined), 60_000);
    const adminAssertion = await sign('bench-admin', [BENCH_ADMIN_GROUP]);
    const asAdmin = (query: string, variables?: unknown, headers: Record<string, string> = {}) =>
      graphqlBody(gateway, { 'x-pomerium-jwt-assertion': adminAssertion, ...headers }, query, variables);

    progress('webhooks: raising the global request budget');
    await mustSucceed(asAdmin('mutation { setPolicyValue(level: GLOBAL, key: "platform.gateway.requests_per_minute", value: "999999999") { __typename } }', undefined, { 'idempotency-key': randomUUID() }));
    await until('the raised budget', () => (gateway.accessModel.policy(null)?.layers.global['platform.gateway.requests_per_minute'] === '999999999' ? true : undefined));

    const organizations = await createOrganizations(asAdmin, admin, options.organizations);
    const created = await createSessions(asAdmin, organizations, options.sessions);
    const fundsBefore = await paidTotal(admin, organizations);

    progress(`webhooks: the burst, ${options.deliveries} deliveries, ${options.concurrency} in flight, ${options.probe} GraphQL clients beside it`);
    const burst = await runBurst(stripe, created.sessions, options, admin, (sessionId) => asAdmin(PLAIN_READ, { id: sessionId }));
    progress('webhooks: waiting for every stored event to be processed');
    const drained = await waitProcessed(admin, burst.uniqueEvents, burst.watch);

    progress('webhooks: lags, totals and the zero-loss checks');
    const lags = await lagsOf(admin);
    const checks = await checksOf(admin, stripe, created.sessions, burst, fundsBefore, organizations);

    progress('webhooks: a fresh webhook against a plain GraphQL request, side by side');
    const apiVersion = burst.apiVersion;
    const fresh = async () => {
      const event: StripeEventJson = {
        id: `evt_bench${randomBytes(12).toString('hex')}`,
        object: 'event',
        api_version: apiVersion,
        created: Math.floor(Date.now() / 1000),
        // No handler: stored, answered, then marked processed by the worker with nothing else to do.
        type: 'payment_intent.created',
        data: { object: { id: `pi_bench${randomBytes(8).toString('hex')}`, object: 'payment_intent', amount: 1000, currency: 'usd' } },
        livemode: false,
        pending_webhooks: 1,
        request: { id: null, idempotency_key: null },
      };
      const answer = await stripe.deliver(event);
      if (answer.status !== 200) throw new Error(`webhook answered ${answer.status}`);
    };
    const readIds = created.sessions.map((session) => session.id);
    const plain = async () => {
      await mustSucceed(asAdmin(PLAIN_READ, { id: readIds[Math.floor(Math.random() * readIds.length)] }));
    };
    const side = await measureSideBySide(fresh, plain, { name: 'webhooks side by side', durationMs: options.durationMs, concurrency: options.concurrency, rounds: options.rounds });

    process.stdout.write(report({ options, created, burst, drained, lags, checks, side }));
    const allOk = checks.every((check) => check.ok) && side.on.errors === 0 && side.off.errors === 0;
    return allOk ? 0 : 1;
  });
}

// ---- GraphQL ----

interface GraphqlBody {
  data?: any;
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
}

async function graphqlBody(gateway: RunningGateway, headers: Record<string, string>, query: string, variables?: unknown): Promise<GraphqlBody> {
  const res = await fetch(`${gateway.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as GraphqlBody;
  if (res.status !== 200 && !body.errors) throw new Error(`gateway answered ${res.status}`);
  return body;
}

async function mustSucceed(answer: Promise<GraphqlBody>): Promise<any> {
  const body = await answer;
  if (body.errors) throw new Error(`gateway answered ${JSON.stringify(body.errors)}`);
  return body.data;
}

type AsAdmin = (query: string, variables?: unknown, headers?: Record<string, string>) => Promise<GraphqlBody>;

/** Runs `work` over `items` with at most `limit` at once. */
async function bounded<T, R>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < items.length; index = next++) results[index] = await work(items[index]!, index);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

// ---- set-up ----

/** Organizations made through iam's GraphQL; billing opens their accounts from iam's events. */
async function createOrganizations(asAdmin: AsAdmin, admin: pg.Client, count: number): Promise<string[]> {
  progress(`webhooks: creating ${count} organizations through the gateway`);
  const run = randomBytes(3).toString('hex');
  const ids = await bounded(Array.from({ length: count }, (_, i) => i), 4, async (i) => {
    const data = await mustSucceed(
      asAdmin(CREATE_ORGANIZATION, { input: { slug: `wh-${run}-${i}`, name: `Webhook bench ${i}`, billingCurrency: CURRENCY } }, { 'idempotency-key': randomUUID() }),
    );
    return String(data.createOrganization.id);
  });
  progress('webhooks: waiting for billing to open their accounts');
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { rows } = await admin.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM billing.accounts WHERE kind = 'customer_balance' AND organization_id = ANY($1::uuid[])",
      [ids],
    );
    if (rows[0]!.n === count) return ids;
    if (Date.now() > deadline) throw new Error(`billing opened accounts for ${rows[0]!.n} of ${count} organizations within 60 s`);
    await sleep(200);
  }
}

interface CreatedSessions {
  sessions: Session[];
  /** createCheckoutSession's latency through the gateway (gateway, billing, the fake's API, the insert), after each organization's first. */
  latenciesMs: number[];
  seconds: number;
}

/**
 * Checkout sessions by createCheckoutSession through the gateway with an
 * Idempotency-Key each, the organizations round-robin. Each organization's
 * first is retried until billing's policy read model knows it (a new
 * organization's snapshot follows iam's event).
 */
async function createSessions(asAdmin: AsAdmin, organizations: string[], count: number): Promise<CreatedSessions> {
  progress(`webhooks: creating ${count} checkout sessions through the gateway`);
  const checkout = async (organizationId: string, amount: bigint): Promise<Session> => {
    const data = await mustSucceed(asAdmin(CHECKOUT, { input: { organizationId, amount: amount.toString() } }, { 'idempotency-key': randomUUID() }));
    const session = data.createCheckoutSession as { id: string; amount: string; stripeSessionId: string };
    if (BigInt(session.amount) !== amount) throw new Error(`checkout ${session.id} is for ${session.amount}, not ${amount}`);
    return { id: session.id, organizationId, amount, stripeSessionId: session.stripeSessionId };
  };
  const amountOf = (i: number) => BigInt(MIN_AMOUNT + ((i * 7919) % AMOUNT_SPREAD));
  const sessions: Session[] = [];
  const firsts = Math.min(count, organizations.length);
  await bounded(organizations.slice(0, firsts), 4, async (organizationId, i) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        sessions[i] = await checkout(organizationId, amountOf(i));
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(200);
      }
    }
  });
  const latenciesMs: number[] = [];
  const started = performance.now();
  await bounded(
    Array.from({ length: count - firsts }, (_, k) => firsts + k),
    8,
    async (i) => {
      const t0 = performance.now();
      sessions[i] = await checkout(organizations[i % organizations.length]!, amountOf(i));
      latenciesMs.push(performance.now() - t0);
    },
  );
  return { sessions, latenciesMs, seconds: (performance.now() - started) / 1000 };
}

async function paidTotal(admin: pg.Client, organizations: string[]): Promise<bigint> {
  const { rows } = await admin.query<{ paid: string | null }>('SELECT sum(paid)::text AS paid FROM billing.organization_funds WHERE organization_id = ANY($1::uuid[])', [organizations]);
  return BigInt(rows[0]?.paid ?? '0');
}

// ---- the burst ----

interface BurstResult {
  acks: Ack[];
  /** Fresh events delivered: each must be stored and processed once. */
  uniqueEvents: Map<string, StripeEventJson>;
  duplicates: number;
  seconds: number;
  /** Plain GraphQL requests timed beside the burst. */
  probe: { latenciesMs: number[]; errors: number };
  disputes: { sessionId: string; amount: bigint }[];
  refunds: { sessionId: string; amount: bigint }[];
  apiVersion: string;
  /** Backlog observed while the burst ran. */
  watch: BacklogWatch;
  errors: string[];
}

interface BacklogWatch {
  maxPending: number;
  stop(): Promise<void>;
}

/** Polls stripe_events while the burst runs: the largest backlog of pending events seen. */
function watchBacklog(admin: pg.Client): BacklogWatch {
  let stopped = false;
  const watch: BacklogWatch = {
    maxPending: 0,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
  const loop = (async () => {
    while (!stopped) {
      const state = await progressOf(admin);
      watch.maxPending = Math.max(watch.maxPending, state.pending);
      await sleep(POLL_MS);
    }
  })();
  return watch;
}

async function progressOf(admin: pg.Client): Promise<Progress> {
  const { rows } = await admin.query<Progress>(
    `SELECT count(*)::int AS stored,
            count(*) FILTER (WHERE status = 'processed')::int AS processed,
            count(*) FILTER (WHERE status = 'pending')::int AS pending,
            count(*) FILTER (WHERE status = 'dead')::int AS dead
       FROM billing.stripe_events`,
  );
  return rows[0]!;
}

/**
 * Completes every session at the fake, `concurrency` webhook POSTs in flight.
 * Once a completion is answered, its session's dispute or refund (for the
 * first sessions) follows it, at least 2 ms later so billing receives it
 * strictly after the completion it needs, and every answered event is
 * queued again as re-deliveries until the burst holds `deliveries` POSTs.
 */
async function runBurst(
  stripe: FakeStripe,
  sessions: Session[],
  options: WebhookBenchOptions,
  admin: pg.Client,
  plainRead: (sessionId: string) => Promise<GraphqlBody>,
): Promise<BurstResult> {
  const unique = options.sessions + options.disputes + options.refunds;
  const duplicates = Math.max(0, options.deliveries - unique);
  const acks: Ack[] = [];
  const uniqueEvents = new Map<string, StripeEventJson>();
  const errors: string[] = [];
  const disputes: BurstResult['disputes'] = [];
  const refunds: BurstResult['refunds'] = [];
  const queue: Array<() => Promise<void>> = [];
  let duplicatesQueued = 0;
  let freshAnswered = 0;
  let apiVersion = '';

  const timed = async (kind: Ack['kind'], call: () => Promise<void>) => {
    const t0 = performance.now();
    let ok = true;
    try {
      await call();
    } catch (error) {
      ok = false;
      if (errors.length < 10) errors.push(`${kind}: ${(error as Error).message}`);
    }
    acks.push({ kind, ms: performance.now() - t0, ok });
    return ok;
  };
  /** The duplicates of one fresh event: the remaining ones spread evenly over the fresh events still to be answered. */
  const queueDuplicates = (event: StripeEventJson) => {
    const share = Math.ceil((duplicates - duplicatesQueued) / Math.max(1, unique - freshAnswered));
    freshAnswered += 1;
    for (let k = 0; k < share && duplicatesQueued < duplicates; k++) {
      duplicatesQueued += 1;
      // Anywhere in what is left, so re-deliveries mix with the completions still to come, as Stripe's retries would.
      queue.splice(Math.floor(Math.random() * (queue.length + 1)), 0, () =>
        timed('duplicate', async () => {
          const answer = await stripe.deliver(event);
          if (answer.status !== 200) throw new Error(`re-delivery of ${event.id} answered ${answer.status}: ${answer.body}`);
        }).then(() => undefined),
      );
    }
  };
  const fresh = (kind: Ack['kind'], drive: () => Promise<StripeEventJson>) =>
    timed(kind, async () => {
      const event = await drive();
      uniqueEvents.set(event.id, event);
      apiVersion ||= event.api_version;
      queueDuplicates(event);
    });

  sessions.forEach((session, index) => {
    queue.push(async () => {
      let event: StripeEventJson | undefined;
      const ok = await fresh('completion', async () => (event = await stripe.completeCheckout(session.stripeSessionId)));
      if (!ok || !event) return;
      session.paymentIntentId = String((event.data.object as { payment_intent: unknown }).payment_intent);
      if (index < options.disputes) {
        queue.push(async () => {
          await sleep(2);
          const disputed = await fresh('dispute', () => stripe.openDispute(session.paymentIntentId!));
          if (disputed) disputes.push({ sessionId: session.id, amount: session.amount });
        });
      } else if (index < options.disputes + options.refunds) {
        const amount = session.amount / 2n;
        queue.push(async () => {
          await sleep(2);
          const refunded = await fresh('refund', () => stripe.refundOutside(session.paymentIntentId!, Number(amount)));
          if (refunded) refunds.push({ sessionId: session.id, amount });
        });
      }
    });
  });

  const watch = watchBacklog(admin);
  let done = false;
  const probe = { latenciesMs: [] as number[], errors: 0 };
  const prober = async () => {
    while (!done) {
      const t0 = performance.now();
      try {
        const body = await plainRead(sessions[Math.floor(Math.random() * sessions.length)]!.id);
        if (body.errors) throw new Error(body.errors[0]?.message);
        probe.latenciesMs.push(performance.now() - t0);
      } catch {
        probe.errors += 1;
      }
    }
  };
  const probes = Array.from({ length: options.probe }, prober);
  let inFlight = 0;
  const deliverer = async () => {
    for (;;) {
      const task = queue.shift();
      if (!task) {
        // A task in flight may still queue its dispute, refund or duplicates.
        if (inFlight === 0) return;
        await sleep(1);
        continue;
      }
      inFlight += 1;
      try {
        await task();
      } finally {
        inFlight -= 1;
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: options.concurrency }, deliverer));
  const seconds = (performance.now() - started) / 1000;
  done = true;
  await Promise.all(probes);
  return { acks, uniqueEvents, duplicates: duplicatesQueued, seconds, probe, disputes, refunds, apiVersion, watch, errors };
}

interface Drained {
  /** Seconds from the end of the burst until the last event was seen processed (0: all were done by then). */
  afterBurstSeconds: number;
  final: Progress;
  maxPending: number;
}

async function waitProcessed(admin: pg.Client, uniqueEvents: Map<string, StripeEventJson>, watch: BacklogWatch): Promise<Drained> {
  const started = performance.now();
  let last = await progressOf(admin);
  let lastChange = performance.now();
  while (last.pending > 0 || last.stored < uniqueEvents.size) {
    if (performance.now() - lastChange > STALL_MS) break;
    await sleep(POLL_MS);
    const now = await progressOf(admin);
    if (now.processed !== last.processed || now.stored !== last.stored) lastChange = performance.now();
    last = now;
  }
  await watch.stop();
  return { afterBurstSeconds: (performance.now() - started) / 1000, final: last, maxPending: watch.maxPending };
}

// ---- lags and checks ----

interface LagStats {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

interface Lags {
  all: LagStats;
  byType: Map<string, LagStats>;
  /** Seconds from the first receipt to the last receipt, and to the last processing. */
  receiveSpan: number;
  processSpan: number;
  attemptsAboveOne: number;
}

function statsOf(values: number[]): LagStats {
  const sorted = [...values].sort((a, b) => a - b);
  return { count: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? Number.NaN };
}

async function lagsOf(admin: pg.Client): Promise<Lags> {
  const { rows } = await admin.query<{ type: string; lag: number; attempts: number }>(
    `SELECT type, extract(epoch FROM processed_at - received_at)::float8 AS lag, attempts FROM billing.stripe_events WHERE status = 'processed'`,
  );
  const byTypeValues = new Map<string, number[]>();
  for (const row of rows) {
    const list = byTypeValues.get(row.type) ?? [];
    list.push(row.lag);
    byTypeValues.set(row.type, list);
  }
  const span = await admin.query<{ receive: number | null; process: number | null }>(
    `SELECT extract(epoch FROM max(received_at) - min(received_at))::float8 AS receive,
            extract(epoch FROM max(processed_at) - min(received_at))::float8 AS process
       FROM billing.stripe_events`,
  );
  return {
    all: statsOf(rows.map((row) => row.lag)),
    byType: new Map([...byTypeValues].sort(([a], [b]) => a.localeCompare(b)).map(([type, values]) => [type, statsOf(values)])),
    receiveSpan: span.rows[0]?.receive ?? Number.NaN,
    processSpan: span.rows[0]?.process ?? Number.NaN,
    attemptsAboveOne: rows.filter((row) => row.attempts > 1).length,
  };
}

interface Check {
  what: string;
  expected: string;
  found: string;
  ok: boolean;
}

async function checksOf(
  admin: pg.Client,
  stripe: FakeStripe,
  sessions: Session[],
  burst: BurstResult,
  fundsBefore: bigint,
  organizations: string[],
): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (what: string, expected: string | number | bigint, found: string | number | bigint, ok?: boolean) =>
    checks.push({ what, expected: String(expected), found: String(found), ok: ok ?? String(expected) === String(found) });

  const failedAcks = burst.acks.filter((ack) => !ack.ok).length;
  add('webhook POSTs answered 2xx', burst.acks.length, burst.acks.length - failedAcks);

  // The fake's log: every POST and its answer, by event.
  const log = stripe.deliveries().filter((delivery) => burst.uniqueEvents.has(delivery.eventId));
  const seen = new Set<string>();
  let freshSaidDuplicate = 0;
  let duplicatesSaidDuplicate = 0;
  let duplicatesPosted = 0;
  for (const delivery of log) {
    const duplicate = (JSON.parse(delivery.body || '{}') as { duplicate?: boolean }).duplicate === true;
    if (seen.has(delivery.eventId)) {
      duplicatesPosted += 1;
      if (duplicate) duplicatesSaidDuplicate += 1;
    } else {
      seen.add(delivery.eventId);
      if (duplicate) freshSaidDuplicate += 1;
    }
  }
  add('re-deliveries answered `duplicate: true`', burst.duplicates, `${duplicatesSaidDuplicate} of ${duplicatesPosted}`, duplicatesSaidDuplicate === burst.duplicates && duplicatesPosted === burst.duplicates);
  add('first deliveries answered `duplicate: false`', burst.uniqueEvents.size, burst.uniqueEvents.size - freshSaidDuplicate, freshSaidDuplicate === 0 && seen.size === burst.uniqueEvents.size);

  const events = await admin.query<{ id: string; status: string; flagged: boolean }>('SELECT id, status, flagged FROM billing.stripe_events');
  const stored = new Set(events.rows.map((row) => row.id));
  const missing = [...burst.uniqueEvents.keys()].filter((id) => !stored.has(id)).length;
  add('stripe_events rows (one per fresh event, none missing)', `${burst.uniqueEvents.size}, 0 missing`, `${events.rows.length}, ${missing} missing`, events.rows.length === burst.uniqueEvents.size && missing === 0);
  const processed = events.rows.filter((row) => row.status === 'processed').length;
  const dead = events.rows.filter((row) => row.status === 'dead').length;
  add('processed / dead', `${burst.uniqueEvents.size} / 0`, `${processed} / ${dead}`);
  add('flagged for finance', 0, events.rows.filter((row) => row.flagged).length);

  const ids = sessions.map((session) => session.id);
  const expectedTotal = sessions.reduce((sum, session) => sum + session.amount, 0n);
  const perSession = await admin.query<{ id: string; status: string; posting_id: string | null; credited: string | null; credits: number }>(
    `SELECT ps.id, ps.status, ps.posting_id,
            (SELECT sum(t.amount)::text FROM billing.transfers t JOIN billing.accounts a ON a.id = t.credit_account_id
              WHERE t.posting_id = 'payment:' || ps.id AND a.kind = 'customer_balance') AS credited,
            (SELECT count(*)::int FROM billing.postings p WHERE p.kind = 'payment_credit' AND p.metadata->>'paymentSessionId' = ps.id::text) AS credits
       FROM billing.payment_sessions ps WHERE ps.id = ANY($1::uuid[])`,
    [ids],
  );
  const amountOf = new Map(sessions.map((session) => [session.id, session.amount]));
  const creditedOnce = perSession.rows.filter(
    (row) => row.status === 'credited' && row.posting_id === `payment:${row.id}` && row.credits === 1 && row.credited !== null && BigInt(row.credited) === amountOf.get(row.id),
  ).length;
  add('sessions credited exactly once, with their own amount', sessions.length, creditedOnce);

  const credits = await admin.query<{ n: number; total: string | null }>(
    `SELECT count(DISTINCT p.id)::int AS n, sum(t.amount)::text AS total
       FROM billing.postings p JOIN billing.transfers t ON t.posting_id = p.id JOIN billing.accounts a ON a.id = t.credit_account_id
      WHERE p.kind = 'payment_credit' AND a.kind = 'customer_balance'`,
  );
  add('payment credits: postings, sum (minor units)', `${sessions.length}, ${expectedTotal}`, `${credits.rows[0]!.n}, ${credits.rows[0]!.total ?? 0}`);
  const outbox = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM billing.outbox_events WHERE type = 'platform.billing.balance.credited'");
  add('balance.credited outbox events', sessions.length, outbox.rows[0]!.n);

  const disputeTotal = burst.disputes.reduce((sum, dispute) => sum + dispute.amount, 0n);
  const disputes = await admin.query<{ n: number; total: string | null }>("SELECT count(*)::int AS n, sum(amount)::text AS total FROM billing.payment_disputes WHERE status = 'held'");
  add('disputes held: rows, sum', `${burst.disputes.length}, ${disputeTotal}`, `${disputes.rows[0]!.n}, ${disputes.rows[0]!.total ?? 0}`);
  const refundTotal = burst.refunds.reduce((sum, refund) => sum + refund.amount, 0n);
  const refunds = await admin.query<{ n: number; total: string | null }>(
    "SELECT count(*)::int AS n, sum(amount)::text AS total FROM billing.refund_requests WHERE origin = 'stripe' AND status = 'posted'",
  );
  add('Stripe refunds posted: rows, sum', `${burst.refunds.length}, ${refundTotal}`, `${refunds.rows[0]!.n}, ${refunds.rows[0]!.total ?? 0}`);

  const paid = (await paidTotal(admin, organizations)) - fundsBefore;
  add('paid balances moved (credits - refunds - disputes held)', expectedTotal - refundTotal - disputeTotal, paid);
  return checks;
}

// ---- the report ----

interface Report {
  options: WebhookBenchOptions;
  created: CreatedSessions;
  burst: BurstResult;
  drained: Drained;
  lags: Lags;
  checks: Check[];
  side: { on: SideRow; off: SideRow };
}

function ackRow(label: string, latencies: number[], errors = 0): string {
  const sorted = [...latencies].sort((a, b) => a - b);
  return `| ${label} | ${sorted.length} | ${errors} | ${fmt(percentile(sorted, 50))} | ${fmt(percentile(sorted, 99))} | ${fmt(sorted[sorted.length - 1] ?? Number.NaN)} |\n`;
}

function report({ options, created, burst, drained, lags, checks, side }: Report): string {
  const unique = burst.uniqueEvents.size;
  const acksOf = (kinds: Ack['kind'][]) => burst.acks.filter((ack) => kinds.includes(ack.kind) && ack.ok).map((ack) => ack.ms);
  const failedOf = (kinds: Ack['kind'][]) => burst.acks.filter((ack) => kinds.includes(ack.kind) && !ack.ok).length;
  const allAcks = [...burst.acks.filter((ack) => ack.ok).map((ack) => ack.ms)].sort((a, b) => a - b);
  const probe = [...burst.probe.latenciesMs].sort((a, b) => a - b);
  const checkoutSorted = [...created.latenciesMs].sort((a, b) => a - b);

  let out =
    `\n## Stripe webhooks under a burst (${options.sessions} checkout sessions of ${options.organizations} organizations, ` +
    `${burst.acks.length} webhook POSTs, ${options.concurrency} in flight, through the gateway's /webhooks/stripe)\n\n` +
    `Set-up: ${created.sessions.length} createCheckoutSession calls through the gateway (Idempotency-Key each; gateway, billing, the fake's API, the insert), ` +
    `after each organization's first: p50 ${fmt(percentile(checkoutSorted, 50))} ms, p99 ${fmt(percentile(checkoutSorted, 99))} ms, ` +
    `${fmt(created.latenciesMs.length / created.seconds, 0)}/s at 8 concurrent.\n` +
    `Burst: ${options.sessions} checkout.session.completed, ${burst.disputes.length} charge.dispute.created, ${burst.refunds.length} charge.refunded ` +
    `(${unique} fresh events) and ${burst.duplicates} re-deliveries of answered events; ${options.probe} GraphQL clients ran a plain read beside it.\n\n` +
    '### Webhook answer (ack) time, timed at the fake: sign, POST through the gateway, billing verifies and stores\n\n' +
    '| deliveries | answered | failed | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|\n' +
    ackRow('checkout.session.completed', acksOf(['completion']), failedOf(['completion'])) +
    ackRow('charge.dispute.created', acksOf(['dispute']), failedOf(['dispute'])) +
    ackRow('charge.refunded', acksOf(['refund']), failedOf(['refund'])) +
    ackRow('re-deliveries (duplicates)', acksOf(['duplicate']), failedOf(['duplicate'])) +
    ackRow('**all**', allAcks, burst.acks.length - allAcks.length) +
    ackRow(`plain GraphQL read beside the burst (${options.probe} clients)`, probe, burst.probe.errors);

  out +=
    '\n### Processing lag: stripe_events.processed_at - received_at (billing\'s own clock, every stored event)\n\n' +
    '| events | count | p50 s | p99 s | max s |\n|---|---|---|---|---|\n';
  for (const [type, stats] of lags.byType) out += `| ${type} | ${stats.count} | ${fmt(stats.p50, 3)} | ${fmt(stats.p99, 3)} | ${fmt(stats.max, 3)} |\n`;
  out += `| **all** | ${lags.all.count} | ${fmt(lags.all.p50, 3)} | ${fmt(lags.all.p99, 3)} | ${fmt(lags.all.max, 3)} |\n`;
  out +=
    `\nLargest backlog seen (pending events, polled every ${POLL_MS} ms): ${drained.maxPending}; events processed more than once (attempts > 1): ${lags.attemptsAboveOne}; ` +
    `the last was processed ${fmt(drained.afterBurstSeconds, 2)} s after the burst's last answer.\n`;

  out +=
    '\n### Throughput\n\n| measure | count | seconds | per second |\n|---|---|---|---|\n' +
    `| webhook POSTs answered (burst wall time) | ${burst.acks.length} | ${fmt(burst.seconds)} | ${fmt(burst.acks.length / burst.seconds, 0)} |\n` +
    `| fresh events stored (first to last received_at) | ${unique} | ${fmt(lags.receiveSpan)} | ${fmt(unique / lags.receiveSpan, 0)} |\n` +
    `| fresh events processed (first received_at to last processed_at) | ${lags.all.count} | ${fmt(lags.processSpan)} | ${fmt(lags.all.count / lags.processSpan, 0)} |\n` +
    `\nBilling's worker processes one event at a time per instance, so the lag is mostly the backlog's wait: at ${fmt(lags.all.count / lags.processSpan, 0)} events/s ` +
    `a backlog of about ${fmt((lags.all.count / lags.processSpan) * LAG_BUDGET_SECONDS, 0)} fresh events arriving at once would reach the ${LAG_BUDGET_SECONDS} s budget on this machine (an estimate from this run, not measured).\n`;

  const check = (ok: boolean) => (ok ? 'yes' : '**NO**');
  out += '\n### Nothing lost, nothing twice\n\n| check | expected | found | ok |\n|---|---|---|---|\n';
  for (const c of checks) out += `| ${c.what} | ${c.expected} | ${c.found} | ${check(c.ok)} |\n`;
  if (burst.errors.length > 0) out += `\nFirst failures: ${burst.errors.join('; ')}\n`;

  out +=
    `\n### A fresh webhook against a plain GraphQL request, side by side (${options.concurrency} concurrent clients, ` +
    `${options.durationMs / 1000} s per side in ${options.rounds} alternating rounds after 2 s warm-up)\n\n` +
    'webhook = a fresh signed event of a type billing has no handler for (payment_intent.created): verified, stored, answered, then marked processed by the worker\n' +
    `GraphQL = ${PLAIN_READ} as a platform admin (gateway, billing, one indexed read)\n` +
    'CPU is this whole process (gateway, subgraphs, fake Stripe and clients) per request\n\n' +
    '| side | requests | errors | req/s | p50 ms | p99 ms | CPU ms/req |\n|---|---|---|---|---|---|---|\n' +
    `| webhook | ${side.on.requests} | ${side.on.errors} | ${fmt(side.on.rps, 0)} | ${fmt(side.on.p50)} | ${fmt(side.on.p99)} | ${fmt(side.on.cpu, 3)} |\n` +
    `| GraphQL | ${side.off.requests} | ${side.off.errors} | ${fmt(side.off.rps, 0)} | ${fmt(side.off.p50)} | ${fmt(side.off.p99)} | ${fmt(side.off.cpu, 3)} |\n` +
    `| webhook / GraphQL | | | ${fmt(side.on.rps / side.off.rps)}x | ${fmt(side.on.p50 / side.off.p50)}x | ${fmt(side.on.p99 / side.off.p99)}x | ${fmt(side.on.cpu / side.off.cpu)}x |\n`;

  const burstAckP99 = percentile(allAcks, 99);
  const probeP99 = percentile(probe, 99);
  out +=
    '\n### Ratios\n\n| measure | this run | against | ratio |\n|---|---|---|---|\n' +
    `| processing lag p99 | ${fmt(lags.all.p99, 3)} s | seed 002 budget ${LAG_BUDGET_SECONDS} s | ${fmt(lags.all.p99 / LAG_BUDGET_SECONDS, 4)}x |\n` +
    `| processing lag max | ${fmt(lags.all.max, 3)} s | seed 002 budget ${LAG_BUDGET_SECONDS} s | ${fmt(lags.all.max / LAG_BUDGET_SECONDS, 4)}x |\n` +
    `| webhook ack p99 in the burst | ${fmt(burstAckP99)} ms | plain GraphQL p99 beside the burst, ${fmt(probeP99)} ms | ${fmt(burstAckP99 / probeP99)}x |\n` +
    `| webhook ack p99, side by side | ${fmt(side.on.p99)} ms | plain GraphQL p99, side by side, ${fmt(side.off.p99)} ms | ${fmt(side.on.p99 / side.off.p99)}x |\n`;
  return out;
}
