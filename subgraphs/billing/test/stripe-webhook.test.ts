/**
 * Issue 18, Stripe's webhooks: verified on the raw bytes (a mutated body or
 * an old timestamp -> 400), stored once per event id and answered at once,
 * processed by the worker with retries and dead letters that finance sees
 * and a platform admin sends back; lag, backlog, dead letters and Stripe's
 * reachability on /metrics.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Stripe from 'stripe';
import type { AccessModelReader } from '@aifactory/access-model';
import { ManualClock, systemClock, type Clock } from '@aifactory/clock';
import { AppError } from '@aifactory/errors';
import { startHttpServer, type RunningHttpServer } from '@aifactory/http';
import { createLogger } from '@aifactory/logging';
import { subgraphHttpRoutes } from '@aifactory/subgraph-kit';
import { ServiceMetrics } from '@aifactory/telemetry';
import { inTransaction } from '../src/data/transactions.js';
import { StripeEventsStore } from '../src/data/stripe-events-store.js';
import { PaymentMetrics } from '../src/domain/payment-metrics.js';
import { StripeEventProcessor } from '../src/domain/stripe-event-processing.js';
import type { StoredStripeEvent, StripeEventHandlers, StripeEventOutcome } from '../src/domain/stripe-events.js';
import { stripeWebhookRoute } from '../src/http/stripe-webhook-route.js';
import { openStripeSecrets, type ReloadingStripeSecrets } from '../src/stripe/stripe-secrets.js';
import type { VerifiedStripeEvent } from '../src/stripe/webhook-signature.js';
import { startStripeEventWorker, startStripeReachabilityProbe, type StripeEventWorker } from '../src/workers/stripe-events.js';
import { billingAccess, orgAdmin, platformAdmin } from './billing-access.js';
import { codeOf, startBillingFixture, type BillingFixture } from './billing-fixture.js';

const SECRET = 'whsec_test_current';
/** The secret being rotated out: still verifies during the overlap. */
const PREVIOUS_SECRET = 'whsec_test_previous';
const TOLERANCE_SECONDS = 300;
const silent = createLogger({ service: 'billing', level: 'silent' });
const authz = billingAccess();

let f: BillingFixture;

beforeAll(async () => {
  // One connection: nothing may hold it while asking the pool for another (route, claims, handlers, metrics).
  f = await startBillingFixture({ poolSize: 1 });
});

afterAll(async () => {
  await f?.close();
});

function stripeEvent(type: string, object: Record<string, unknown>): VerifiedStripeEvent {
  return {
    id: `evt_${randomUUID().replaceAll('-', '')}`,
    object: 'event',
    api_version: '2025-01-27.acacia',
    type,
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    data: { object },
  };
}

function checkoutCompleted(paymentSessionId: string): VerifiedStripeEvent {
  return stripeEvent('checkout.session.completed', {
    id: `cs_test_${randomUUID().replaceAll('-', '')}`,
    object: 'checkout.session',
    client_reference_id: paymentSessionId,
    payment_status: 'paid',
    amount_total: 2500,
    currency: 'usd',
  });
}

function signed(payload: string, options: { timestamp?: number; secret?: string } = {}): string {
  return Stripe.webhooks.generateTestHeaderString({
    payload,
    secret: options.secret ?? SECRET,
    timestamp: options.timestamp ?? Math.floor(Date.now() / 1000),
  });
}

/** Handlers that record what they were given; `outcome` decides what each returns, `fail` makes them throw. */
function recordingHandlers(types: readonly string[]) {
  const seen: StoredStripeEvent[] = [];
  const control: { outcome: (event: StoredStripeEvent) => StripeEventOutcome; fail: Error | null } = { outcome: () => ({}), fail: null };
  const handler = async (event: StoredStripeEvent): Promise<StripeEventOutcome> => {
    seen.push(event);
    if (control.fail) throw control.fail;
    return control.outcome(event);
  };
  const handlers: StripeEventHandlers = Object.fromEntries(types.map((type) => [type, handler]));
  return { seen, control, handlers };
}

function processorWith(handlers: StripeEventHandlers, clock: Clock, options: { maxAttempts?: number; retryBaseMs?: number; leaseMs?: number } = {}) {
  const store = new StripeEventsStore();
  const metrics = new ServiceMetrics('billing');
  const paymentMetrics = new PaymentMetrics(f.database.pool, store, clock);
  paymentMetrics.attach(metrics);
  const processor = new StripeEventProcessor(
    f.database.pool,
    store,
    handlers,
    { maxAttempts: options.maxAttempts ?? 8, retryBaseMs: options.retryBaseMs ?? 2_000, subjectPrefix: 'test', ...(options.leaseMs ? { leaseMs: options.leaseMs } : {}) },
    paymentMetrics,
    clock,
  );
  return { processor, store, metrics, paymentMetrics };
}

async function metricValue(metrics: ServiceMetrics, name: string): Promise<number | undefined> {
  const { body } = await metrics.render();
  const line = body.split('\n').find((text) => text.startsWith(`${name}{`) || text.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

async function storedRow(id: string) {
  const { rows } = await f.admin.query(
    'SELECT status, attempts, last_error, flagged, flag_reason, organization_id, payment_session_id, correlation_id, payload, processed_at, next_attempt_at FROM stripe_events WHERE id = $1',
    [id],
  );
  return rows[0];
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('the Stripe webhook route', () => {
  const TYPES = ['checkout.session.completed'];
  let server: RunningHttpServer;
  let worker: StripeEventWorker;
  let recorded: ReturnType<typeof recordingHandlers>;
  let setup: ReturnType<typeof processorWith>;
  let secretsDir: string;
  let webhookSecretFile: string;
  let secrets: ReloadingStripeSecrets;
  const knownSessions = new Map<string, string>();

  beforeAll(async () => {
    // The secrets come from files, followed as billing follows them, so a rotation is seen without a restart.
    secretsDir = await mkdtemp(path.join(tmpdir(), 'aif-stripe-webhook-'));
    webhookSecretFile = path.join(secretsDir, 'stripe-webhook-secret');
    await writeFile(webhookSecretFile, `${SECRET}\n${PREVIOUS_SECRET}\n`, { mode: 0o600 });
    await writeFile(path.join(secretsDir, 'stripe-api-key'), 'sk_test_unused\n', { mode: 0o600 });
    secrets = await openStripeSecrets({
      STRIPE_API_KEY_FILE: path.join(secretsDir, 'stripe-api-key'),
      STRIPE_WEBHOOK_SECRET_FILE: webhookSecretFile,
      STRIPE_SECRETS_RELOAD_MS: 50,
    });
    recorded = recordingHandlers(TYPES);
    // An event names billing's payment session; one billing does not know is flagged for finance.
    recorded.control.outcome = (event) => {
      const sessionId = String(event.object.client_reference_id);
      const organizationId = knownSessions.get(sessionId);
      return organizationId ? { organizationId, paymentSessionId: sessionId } : { flag: 'unknown_session' };
    };
    setup = processorWith(recorded.handlers, systemClock);
    const routes = subgraphHttpRoutes(
      [stripeWebhookRoute({ events: setup.processor, secrets: secrets.webhookSecrets, toleranceSeconds: TOLERANCE_SECONDS })],
      async () => {
        throw new AppError('INTERNAL_AUTH_UNAUTHENTICATED', 'no internal calls in this test');
      },
      {} as AccessModelReader,
      () => {
        throw new Error('no Access in this test');
      },
    );
    server = await startHttpServer({ logger: silent, routes, shutdownGraceMs: 100 }, 0);
    // A long poll: only the route's nudge can make the worker process an event within these tests' waits.
    worker = startStripeEventWorker({ processor: setup.processor, everyMs: 60_000, logger: silent });
  });

  afterAll(async () => {
    await worker?.stop();
    await server?.close();
    secrets?.close();
    await rm(secretsDir, { recursive: true, force: true });
  });

  const post = async (body: string, signature: string | null, headers: Record<string, string> = {}) => {
    const res = await fetch(`${server.url}/webhooks/stripe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(signature === null ? {} : { 'stripe-signature': signature }), ...headers },
      body,
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  it('stores a verified event with its payload and correlation id, answers 200 at once, and the worker processes it', async () => {
    const sessionId = randomUUID();
    const organizationId = randomUUID();
    knownSessions.set(sessionId, organizationId);
    const event = checkoutCompleted(sessionId);
    const body = JSON.stringify(event);
    const correlationId = `corr-${randomUUID()}`;

    const answer = await post(body, signed(body), { 'x-correlation-id': correlationId });

    expect(answer).toEqual({ status: 200, body: { received: true, duplicate: false } });
    const row = await eventually(
      () => storedRow(event.id),
      (stored) => stored?.status === 'processed',
    );
    expect(row).toMatchObject({ status: 'processed', attempts: 1, flagged: false, organization_id: organizationId, payment_session_id: sessionId, correlation_id: correlationId });
    expect(row.payload).toEqual(event);
    const handled = recorded.seen.filter((seen) => seen.id === event.id);
    expect(handled).toHaveLength(1);
    expect(handled[0]).toMatchObject({ type: 'checkout.session.completed', object: event.data.object, correlationId });
    expect(await metricValue(setup.metrics, 'aif_billing_webhook_lag_seconds_count')).toBeGreaterThanOrEqual(1);
    const { body: rendered } = await setup.metrics.render();
    expect(rendered).toMatch(/^aif_billing_webhook_events_total\{type="checkout.session.completed",outcome="processed"[^}]*\} [1-9]/m);
  });

  it('answers a redelivery 200 as a duplicate, and nothing else happens: the handler ran once', async () => {
    const sessionId = randomUUID();
    knownSessions.set(sessionId, randomUUID());
    const event = checkoutCompleted(sessionId);
    const body = JSON.stringify(event);
    expect((await post(body, signed(body))).body).toEqual({ received: true, duplicate: false });
    await eventually(
      () => storedRow(event.id),
      (stored) => stored?.status === 'processed',
    );
    const before = await storedRow(event.id);

    // Stripe signs every delivery afresh.
    const again = await post(body, signed(body, { timestamp: Math.floor(Date.now() / 1000) + 1 }));

    expect(again).toEqual({ status: 200, body: { received: true, duplicate: true } });
    expect(await setup.processor.processDue(50)).toEqual([]);
    expect(recorded.seen.filter((seen) => seen.id === event.id)).toHaveLength(1);
    expect(await storedRow(event.id)).toEqual(before);
  });

  it('refuses a body changed after signing (400 WEBHOOK_SIGNATURE_INVALID) and stores nothing', async () => {
    const event = checkoutCompleted(randomUUID());
    const body = JSON.stringify(event);
    const mutated = body.replace('"amount_total":2500', '"amount_total":250000');
    expect(mutated).not.toBe(body);

    const answer = await post(mutated, signed(body));

    expect(answer.status).toBe(400);
    expect(answer.body.error).toMatchObject({ code: 'WEBHOOK_SIGNATURE_INVALID' });
    expect(await storedRow(event.id)).toBeUndefined();
  });

  it('refuses a signature older than the tolerance (a replay) with 400, and one with no signature at all', async () => {
    const event = checkoutCompleted(randomUUID());
    const body = JSON.stringify(event);

    const old = await post(body, signed(body, { timestamp: Math.floor(Date.now() / 1000) - TOLERANCE_SECONDS - 60 }));
    const unsigned = await post(body, null);
    const otherSecret = await post(body, signed(body, { secret: 'whsec_someone_else' }));

    for (const answer of [old, unsigned, otherSecret]) {
      expect(answer.status).toBe(400);
      expect(answer.body.error).toMatchObject({ code: 'WEBHOOK_SIGNATURE_INVALID' });
    }
    expect(await storedRow(event.id)).toBeUndefined();
  });

  it('accepts an event signed with the secret being rotated out', async () => {
    const event = checkoutCompleted(randomUUID());
    const body = JSON.stringify(event);

    expect((await post(body, signed(body, { secret: PREVIOUS_SECRET }))).status).toBe(200);
    expect(
      await eventually(
        () => storedRow(event.id),
        (stored) => stored?.status === 'processed',
      ),
    ).toMatchObject({ status: 'processed' });
  });

  it('stores an event for a session billing does not know, flagged for finance', async () => {
    const event = checkoutCompleted(randomUUID());
    const body = JSON.stringify(event);

    expect((await post(body, signed(body))).status).toBe(200);

    const row = await eventually(
      () => storedRow(event.id),
      (stored) => stored?.status === 'processed',
    );
    expect(row).toMatchObject({ status: 'processed', flagged: true, flag_reason: 'unknown_session', organization_id: null, payment_session_id: null });
    const flagged = await setup.processor.list(authz.caller(platformAdmin).access, { flagged: true }, { first: 100 });
    expect(flagged.edges.map((edge) => edge.node)).toContainEqual(expect.objectContaining({ id: event.id, flagged: true, flagReason: 'unknown_session' }));
  });

  it('marks an event of a type without a handler processed and does nothing else', async () => {
    const event = stripeEvent('customer.updated', { id: 'cus_test_1', object: 'customer' });
    const body = JSON.stringify(event);
    const seenBefore = recorded.seen.length;

    expect((await post(body, signed(body))).status).toBe(200);

    const row = await eventually(
      () => storedRow(event.id),
      (stored) => stored?.status === 'processed',
    );
    expect(row).toMatchObject({ status: 'processed', flagged: false, attempts: 1 });
    expect(recorded.seen).toHaveLength(seenBefore);
  });

  // Last: it ends the overlap, so the previous secret no longer verifies after it.
  it('verifies with a secret added to the file after start, and stops verifying with one removed, without a restart', async () => {
    const NEXT_SECRET = 'whsec_test_next';
    const before = checkoutCompleted(randomUUID());
    const beforeBody = JSON.stringify(before);
    expect((await post(beforeBody, signed(beforeBody, { secret: NEXT_SECRET }))).status).toBe(400);

    await writeFile(webhookSecretFile, `${SECRET}\n${PREVIOUS_SECRET}\n${NEXT_SECRET}\n`);
    const event = checkoutCompleted(randomUUID());
    const body = JSON.stringify(event);
    const accepted = await eventually(
      () => post(body, signed(body, { secret: NEXT_SECRET })),
      (answer) => answer.status === 200,
      3_000,
    );
    expect(accepted).toEqual({ status: 200, body: { received: true, duplicate: false } });
    expect(await eventually(() => storedRow(event.id), (stored) => stored?.status === 'processed')).toMatchObject({ status: 'processed' });

    await writeFile(webhookSecretFile, `${SECRET}\n${NEXT_SECRET}\n`);
    // Waited for on the secrets, not by posting: a delivery that got in before the reload would be stored.
    await eventually(
      async () => secrets.webhookSecrets(),
      (held) => !held.includes(PREVIOUS_SECRET),
      3_000,
    );
    const late = checkoutCompleted(randomUUID());
    const lateBody = JSON.stringify(late);
    const refused = await post(lateBody, signed(lateBody, { secret: PREVIOUS_SECRET }));
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'WEBHOOK_SIGNATURE_INVALID' });
    expect(await storedRow(late.id)).toBeUndefined();
  });
});

describe('processing stored events', () => {
  const TYPE = 'charge.dispute.created';
  const BASE_MS = 1_000;
  const clock = new ManualClock();
  let recorded: ReturnType<typeof recordingHandlers>;
  let setup: ReturnType<typeof processorWith>;

  beforeAll(() => {
    // Ahead of real time, so whatever the route's tests stored is due here at once (and drained first).
    clock.set(Date.now() + 60_000);
    recorded = recordingHandlers([TYPE]);
    setup = processorWith(recorded.handlers, clock, { maxAttempts: 3, retryBaseMs: BASE_MS, leaseMs: 60_000 });
  });

  beforeEach(() => {
    recorded.control.fail = null;
    recorded.control.outcome = () => ({});
  });

  /** Processes what is due now until nothing is; the events left pending wait for a later attempt. */
  const processAll = async () => {
    const all = [];
    for (;;) {
      const results = await setup.processor.processDue(50);
      all.push(...results);
      if (results.length === 0) return all;
    }
  };

  const receive = async (event: VerifiedStripeEvent) => {
    await setup.processor.receive(event, `corr-${randomUUID()}`);
    return event.id;
  };

  it('retries a failing handler with backoff, then dead-letters the event: finance sees it, and so does the dead-letter gauge', async () => {
    await processAll();
    const deadBefore = (await metricValue(setup.metrics, 'aif_billing_webhook_dead_letters')) ?? 0;
    recorded.control.fail = new AppError('PAYMENT_PROVIDER_UNAVAILABLE', 'Stripe cannot be reached');
    const id = await receive(stripeEvent(TYPE, { id: `dp_${randomUUID()}`, object: 'dispute' }));

    expect(await processAll()).toEqual([expect.objectContaining({ id, outcome: 'retried' })]);
    let row = await storedRow(id);
    expect(row).toMatchObject({ status: 'pending', attempts: 1, last_error: 'PAYMENT_PROVIDER_UNAVAILABLE: Stripe cannot be reached' });
    expect(row.next_attempt_at.getTime()).toBe(clock.nowMs() + BASE_MS);
    expect(await metricValue(setup.metrics, 'aif_billing_webhook_pending')).toBeGreaterThanOrEqual(1);

    // Not due before its backoff ran out.
    clock.advance(BASE_MS - 1);
    expect(await processAll()).toEqual([]);
    clock.advance(1);
    expect(await processAll()).toEqual([expect.objectContaining({ id, outcome: 'retried' })]);
    row = await storedRow(id);
    expect(row).toMatchObject({ status: 'pending', attempts: 2 });
    // The wait doubles.
    expect(row.next_attempt_at.getTime()).toBe(clock.nowMs() + 2 * BASE_MS);

    clock.advance(2 * BASE_MS);
    expect(await processAll()).toEqual([expect.objectContaining({ id, outcome: 'dead' })]);
    expect(await storedRow(id)).toMatchObject({ status: 'dead', attempts: 3, last_error: 'PAYMENT_PROVIDER_UNAVAILABLE: Stripe cannot be reached' });
    clock.advance(60 * 60_000);
    expect(await processAll()).toEqual([]);
    expect(recorded.seen.filter((seen) => seen.id === id)).toHaveLength(3);

    const dead = await setup.processor.list(authz.caller(platformAdmin).access, { status: ['dead'] }, {});
    expect(dead.edges.map((edge) => edge.node)).toContainEqual(
      expect.objectContaining({ id, type: TYPE, status: 'dead', attempts: 3, lastError: 'PAYMENT_PROVIDER_UNAVAILABLE: Stripe cannot be reached' }),
    );
    expect(await metricValue(setup.metrics, 'aif_billing_webhook_dead_letters')).toBe(deadBefore + 1);
    const { body: rendered } = await setup.metrics.render();
    expect(rendered).toMatch(new RegExp(`^aif_billing_webhook_events_total\\{type="${TYPE}",outcome="dead"[^}]*\\} 1$`, 'm'));
  });

  it('keeps what a handler throws that is not an AppError out of the stored error', async () => {
    recorded.control.fail = new Error('relation "secret_table" does not exist');
    const id = await receive(stripeEvent(TYPE, { id: `dp_${randomUUID()}`, object: 'dispute' }));

    await processAll();

    expect(await storedRow(id)).toMatchObject({ status: 'pending', last_error: 'INTERNAL_ERROR: Internal error' });
    recorded.control.fail = null;
    clock.advance(BASE_MS);
    await processAll();
    expect(await storedRow(id)).toMatchObject({ status: 'processed', last_error: null });
  });

  it("sends a dead event back when a platform admin retries it, audited, and it is processed", async () => {
    recorded.control.fail = new AppError('PAYMENT_PROVIDER_UNAVAILABLE', 'Stripe cannot be reached');
    const organizationId = randomUUID();
    const paymentSessionId = randomUUID();
    const id = await receive(stripeEvent(TYPE, { id: `dp_${randomUUID()}`, object: 'dispute' }));
    for (let attempt = 0; attempt < 3; attempt += 1) {
      await processAll();
      clock.advance(10 * BASE_MS);
    }
    expect(await storedRow(id)).toMatchObject({ status: 'dead' });
    const admin = authz.caller(platformAdmin);

    recorded.control.fail = null;
    recorded.control.outcome = () => ({ organizationId, paymentSessionId });
    const revived = await setup.processor.retry(admin, id);

    expect(revived).toMatchObject({ id, status: 'pending', attempts: 0 });
    const { rows: audits } = await f.admin.query("SELECT payload FROM outbox_events WHERE type = 'platform.audit.billing.payment.webhook_retry'");
    expect(audits.map((audit) => audit.payload)).toContainEqual(
      expect.objectContaining({
        action: 'billing.payment.webhook_retry',
        principal: expect.objectContaining({ id: 'platform-admin' }),
        correlationId: admin.correlationId,
        details: expect.objectContaining({ stripeEventId: id, type: TYPE, attempts: 3 }),
      }),
    );
    expect(await processAll()).toEqual([expect.objectContaining({ id, outcome: 'processed' })]);
    expect(await storedRow(id)).toMatchObject({ status: 'processed', attempts: 1, last_error: null, organization_id: organizationId, payment_session_id: paymentSessionId });
  });

  it('retries only a dead event, only for a platform admin', async () => {
    const id = await receive(stripeEvent(TYPE, { id: `dp_${randomUUID()}`, object: 'dispute' }));

    expect(await codeOf(setup.processor.retry(authz.caller(platformAdmin), id))).toBe('BILLING_WEBHOOK_EVENT_NOT_DEAD');
    expect(await codeOf(setup.processor.retry(authz.caller(platformAdmin), 'evt_unknown'))).toBe('BILLING_WEBHOOK_EVENT_NOT_FOUND');
    expect(await codeOf(setup.processor.retry(authz.caller(orgAdmin(randomUUID())), id))).toBe('AUTH_FORBIDDEN');
    expect(await codeOf(setup.processor.list(authz.caller(orgAdmin(randomUUID())).access, null, {}))).toBe('AUTH_FORBIDDEN');
    await processAll();
  });

  it('takes an event up again once the lease of a worker that died mid-handler ran out', async () => {
    const id = await receive(stripeEvent(TYPE, { id: `dp_${randomUUID()}`, object: 'dispute' }));
    // A worker claimed it and died before settling it.
    await inTransaction(f.database.pool, (tx) => setup.store.claimDue(tx, clock.now(), new Date(clock.nowMs() + 60_000), 50));
    expect(await processAll()).toEqual([]);

    clock.advance(60_000);

    expect(await processAll()).toEqual([expect.objectContaining({ id, outcome: 'processed' })]);
    expect(await storedRow(id)).toMatchObject({ status: 'processed', attempts: 2 });
  });

  it('dead-letters an event whose every claim died before it was settled', async () => {
    const id = await receive(stripeEvent(TYPE, { id: `dp_${randomUUID()}`, object: 'dispute' }));
    for (let claim = 0; claim < 3; claim += 1) {
      await inTransaction(f.database.pool, (tx) => setup.store.claimDue(tx, clock.now(), new Date(clock.nowMs() + 60_000), 50));
      clock.advance(60_000);
    }
    const seen = recorded.seen.length;

    expect(await processAll()).toEqual([expect.objectContaining({ id, outcome: 'dead' })]);
    expect(await storedRow(id)).toMatchObject({ status: 'dead', attempts: 4 });
    expect(recorded.seen).toHaveLength(seen);
  });

  it('leases each event as its processing starts: one waiting behind slow handlers is not taken up by another instance too', async () => {
    await processAll();
    const HANDLER_MS = 40_000;
    const seen: string[] = [];
    let anotherInstancePolled = false;
    // Each handler takes 40 s (Stripe slow to answer); while the second runs, another billing instance polls.
    const slow: StripeEventHandlers = {
      [TYPE]: async (event) => {
        seen.push(event.id);
        clock.advance(HANDLER_MS);
        if (seen.length === 2 && !anotherInstancePolled) {
          anotherInstancePolled = true;
          await other.processor.processDue(50);
        }
        return {};
      },
    };
    const one = processorWith(slow, clock, { leaseMs: 60_000 });
    const other = processorWith(slow, clock, { leaseMs: 60_000 });
    const ids = [];
    for (let n = 0; n < 3; n += 1) {
      ids.push(await receive(stripeEvent(TYPE, { id: `dp_${randomUUID()}`, object: 'dispute' })));
      clock.advance(1);
    }

    await one.processor.processDue(50);

    expect(anotherInstancePolled).toBe(true);
    expect([...seen].sort()).toEqual([...ids].sort());
    for (const id of ids) expect(await storedRow(id)).toMatchObject({ status: 'processed', attempts: 1 });
  });

  it('processes a batch in the order the events were received', async () => {
    const ids = [];
    for (let n = 0; n < 3; n += 1) {
      ids.push(await receive(stripeEvent(TYPE, { id: `dp_${randomUUID()}`, object: 'dispute' })));
      clock.advance(1);
    }
    const seen = recorded.seen.length;

    await processAll();

    expect(recorded.seen.slice(seen).map((event) => event.id)).toEqual(ids);
  });

  it('pages finance list oldest first with a cursor of its own', async () => {
    const admin = authz.caller(platformAdmin).access;
    const all = await setup.processor.list(admin, { status: ['processed', 'dead'] }, { first: 100 });
    expect(all.edges.length).toBeGreaterThan(2);

    const first = await setup.processor.list(admin, { status: ['processed', 'dead'] }, { first: 2 });
    const rest = await setup.processor.list(admin, { status: ['processed', 'dead'] }, { first: 100, after: first.pageInfo.endCursor });

    expect(first.pageInfo.hasNextPage).toBe(true);
    expect([...first.edges, ...rest.edges].map((edge) => edge.node.id)).toEqual(all.edges.map((edge) => edge.node.id));
    const received = all.edges.map((edge) => edge.node.receivedAt.getTime());
    expect(received).toEqual([...received].sort((a, b) => a - b));
    expect(await codeOf(setup.processor.list(admin, null, { after: Buffer.from('["seq","1"]').toString('base64url') }))).toBe('BAD_REQUEST_INVALID_INPUT');
  });

  it('reports the oldest pending event\'s age', async () => {
    await processAll();
    recorded.control.fail = new AppError('PAYMENT_PROVIDER_UNAVAILABLE', 'Stripe cannot be reached');
    const id = await receive(stripeEvent(TYPE, { id: `dp_${randomUUID()}`, object: 'dispute' }));
    await processAll();
    clock.advance(30_000);

    expect(await metricValue(setup.metrics, 'aif_billing_webhook_oldest_pending_seconds')).toBeGreaterThanOrEqual(30);

    recorded.control.fail = null;
    await processAll();
    expect(await storedRow(id)).toMatchObject({ status: 'processed' });
    expect(await metricValue(setup.metrics, 'aif_billing_webhook_pending')).toBe(0);
    expect(await metricValue(setup.metrics, 'aif_billing_webhook_oldest_pending_seconds')).toBe(0);
  });
});

describe("Stripe's reachability", () => {
  it('is 1 while the probe answers and 0 while Stripe cannot be reached, and the provider\'s own reports set it too', async () => {
    const metrics = new ServiceMetrics('billing');
    const paymentMetrics = new PaymentMetrics(f.database.pool, new StripeEventsStore(), systemClock);
    // Reported before the metrics exist: kept and shown from the attach on.
    paymentMetrics.stripeReachable(true);
    paymentMetrics.attach(metrics);
    expect(await metricValue(metrics, 'aif_billing_stripe_reachable')).toBe(1);

    const probe = startStripeReachabilityProbe({
      provider: {
        probe: async () => {
          throw new AppError('PAYMENT_PROVIDER_UNAVAILABLE', 'Stripe cannot be reached');
        },
      },
      metrics: paymentMetrics,
      logger: silent,
      everyMs: 10,
    });
    try {
      expect(await eventually(() => metricValue(metrics, 'aif_billing_stripe_reachable'), (value) => value === 0)).toBe(0);
    } finally {
      await probe.stop();
    }
    paymentMetrics.stripeReachable(true);
    expect(await metricValue(metrics, 'aif_billing_stripe_reachable')).toBe(1);
  });
});
