import type { SeedResult } from '@aifactory/devstack';
import { startPrivateRedis, type PrivateRedis } from '@aifactory/testing';
import { startTracing, type Tracing } from '@aifactory/telemetry';
import { eventually } from './support/eventually.js';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

const RENAME = 'mutation Rename($id: ID!, $name: String!) { renameOrganization(id: $id, name: $name) { id name } }';
// Answered to any signed-in human, even one holding no role yet.
const MY_ORGANIZATIONS = '{ myOrganizations { edges { node { id } } } }';
// Needs platform:organization:read: the platform admins here.
const ORGANIZATIONS = '{ organizations { edges { node { id } } } }';
// Windows are aligned to the clock: a day-long one makes a test that straddles a boundary all but impossible.
const WINDOW = 86_400;

/**
 * Every principal's request budget is IAM's global policy value of this key, per clock minute;
 * RATE_LIMITS' `default` only serves until that policy exists, which is before any request.
 */
const REQUESTS_PER_MINUTE = 'platform.gateway.requests_per_minute';

/** Sets the per-principal budget as a platform admin of its own (so no budget under test pays for it) and waits until the gateway applies it. */
async function setPrincipalBudget(t: TestPlatform, limit: number): Promise<void> {
  const policyAdmin = await t.assertion({ subject: 'policy-admin', groups: ['test-platform-admins'] });
  const set = await t.graphql({
    query: `mutation { setPolicyValue(level: GLOBAL, key: "${REQUESTS_PER_MINUTE}", value: "${limit}") { value } }`,
    assertion: policyAdmin,
  });
  expect(set.body).toEqual({ data: { setPolicyValue: { value: String(limit) } } });
  const probe = await t.assertion({ subject: 'policy-probe' });
  await eventually(async () => {
    const res = await t.graphql({ query: '{ __typename }', assertion: probe });
    expect(res.headers.get('x-ratelimit-limit')).toBe(String(limit));
  }, 10_000);
}

/** Minute windows are aligned to the clock: start a run of requests that must share one where the minute has room for it. */
async function awayFromMinuteEnd(): Promise<void> {
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 50_000) await new Promise((resolve) => setTimeout(resolve, 60_100 - intoMinute));
}

function linesFor(t: TestPlatform, correlationId: string | null) {
  return t.logs.lines().filter((line) => line.service === 'gateway' && line.correlationId === correlationId && typeof line.status === 'number');
}

describe('rate limits per principal and per operation', () => {
  let t: TestPlatform;
  beforeAll(async () => {
    t = await startTestPlatform({
      gatewayOverrides: {
        RATE_LIMITS: JSON.stringify({
          default: { limit: 1000, windowSeconds: WINDOW },
          operations: { Named: { limit: 2, windowSeconds: WINDOW } },
          webhooks: { limit: 3, windowSeconds: WINDOW },
        }),
      },
    });
    await setPrincipalBudget(t, 5);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('lets exactly the limit through when 12 requests arrive at once, and answers the rest 429 with the headers', async () => {
    const assertion = await t.assertion({ subject: 'burst-user' });
    await awayFromMinuteEnd();
    const answers = await Promise.all(Array.from({ length: 12 }, () => t.graphql({ query: MY_ORGANIZATIONS, assertion })));
    const passed = answers.filter((res) => res.status === 200);
    const limited = answers.filter((res) => res.status === 429);
    expect(passed).toHaveLength(5);
    expect(limited).toHaveLength(7);
    for (const res of answers) {
      expect(res.headers.get('x-ratelimit-limit')).toBe('5');
      expect(Number(res.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000);
    }
    expect(passed.map((res) => Number(res.headers.get('x-ratelimit-remaining'))).sort()).toEqual([0, 1, 2, 3, 4]);
    for (const res of limited) {
      expect(res.headers.get('x-ratelimit-remaining')).toBe('0');
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(res.body.errors[0].extensions.code).toBe('RATE_LIMIT_EXCEEDED');
    }
    const other = await t.graphql({ query: MY_ORGANIZATIONS, assertion: await t.assertion({ subject: 'someone-else' }) });
    expect(other.status).toBe(200);
  });

  it("applies an operation's own rule on top of the principal's", async () => {
    const assertion = await t.assertion({ subject: 'named-user' });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i += 1) {
      const res = await t.graphql({ query: `query Named ${MY_ORGANIZATIONS}`, assertion });
      statuses.push(res.status);
      if (i === 2) expect(res.headers.get('x-ratelimit-limit')).toBe('2');
    }
    expect(statuses).toEqual([200, 200, 429]);
    const unnamed = await t.graphql({ query: MY_ORGANIZATIONS, assertion });
    expect(unnamed.status).toBe(200);
  });
});

describe('the edge when Redis fails', () => {
  let t: TestPlatform;
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    await redis.stop();
    t = await startTestPlatform({ gatewayOverrides: { REDIS_URL: redis.url } });
  });
  afterAll(async () => {
    await t?.close();
    await redis?.stop();
  });

  it('lets requests through (the general limiter fails open) and counts them in a metric', async () => {
    const res = await t.graphql({ query: MY_ORGANIZATIONS, assertion: await t.assertion() });
    expect(res.status).toBe(200);
    const metrics = await (await fetch(`${t.platform.gatewayUrl}/metrics`)).text();
    const failOpen = metrics.split('\n').find((line) => line.startsWith('aif_rate_limit_decisions_total') && line.includes('outcome="fail_open"'));
    expect(Number(failOpen?.split(' ').pop())).toBeGreaterThanOrEqual(1);
    expect(t.logs.lines().some((line) => line.service === 'gateway' && line.msg === 'rate limiter failed open')).toBe(true);
  });

  it('refuses a mutation that carries an idempotency key (fails closed) and logs the cause once', async () => {
    const res = await t.graphql({
      query: RENAME,
      variables: { id: '00000000-0000-4000-8000-000000000000', name: 'x' },
      assertion: await t.adminAssertion(),
      headers: { 'idempotency-key': 'redis-down-1' },
    });
    expect(res.status).toBe(503);
    const correlationId = res.headers.get('x-correlation-id');
    expect(res.body.errors[0].extensions).toEqual({ code: 'IDEMPOTENCY_UNAVAILABLE', correlationId });
    const lines = linesFor(t, correlationId);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', code: 'IDEMPOTENCY_UNAVAILABLE', errorClass: 'retryable_infra', status: 503 });
    expect((lines[0]?.cause as unknown[]).length).toBeGreaterThanOrEqual(1);
  });
});

describe('idempotency keys on mutations', () => {
  let t: TestPlatform;
  let seeded: SeedResult;
  beforeAll(async () => {
    t = await startTestPlatform();
    seeded = await t.seed();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('replays the stored answer, refuses a changed body with 422 and a key still in flight with 409', async () => {
    const assertion = await t.adminAssertion();
    const key = { 'idempotency-key': 'rename-demo-1' };
    const variables = { id: seeded.organizationId, name: 'Demo Renamed' };

    // Hold the organization's row so the first rename stays in flight.
    const holder = await t.db.admin();
    const observer = await t.db.admin();
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM iam.organizations WHERE id = $1 FOR UPDATE', [seeded.organizationId]);
    const first = t.graphql({ query: RENAME, variables, assertion, headers: key });
    // Another session watches: a transaction sees pg_stat_activity as it was when it first looked.
    const waiting = async () =>
      (await observer.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")).rows[0].n;
    await eventually(async () => expect(await waiting()).toBe(1), 10_000);

    const whileRunning = await t.graphql({ query: RENAME, variables, assertion, headers: key });
    expect(whileRunning.status).toBe(409);
    expect(whileRunning.body.errors[0].extensions.code).toBe('IDEMPOTENCY_REQUEST_IN_FLIGHT');
    await holder.query('COMMIT');

    const done = await first;
    expect(done.status).toBe(200);
    expect(done.body).toEqual({ data: { renameOrganization: { id: seeded.organizationId, name: 'Demo Renamed' } } });

    const hitsBefore = t.subgraphHits();
    const replay = await t.graphql({ query: RENAME, variables, assertion, headers: key });
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual(done.body);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(t.subgraphHits()).toBe(hitsBefore);

    const changed = await t.graphql({ query: RENAME, variables: { ...variables, name: 'Other' }, assertion, headers: key });
    expect(changed.status).toBe(422);
    expect(changed.body.errors[0].extensions.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(t.subgraphHits()).toBe(hitsBefore);
  });

  it('keeps keys apart per principal and ignores them on queries', async () => {
    const variables = { id: seeded.organizationId, name: 'Demo' };
    const admin = await t.adminAssertion();
    const otherAdmin = await t.assertion({ subject: 'admin-2', groups: ['test-platform-admins'] });
    const a = await t.graphql({ query: RENAME, variables, assertion: admin, headers: { 'idempotency-key': 'shared-key' } });
    const b = await t.graphql({ query: RENAME, variables, assertion: otherAdmin, headers: { 'idempotency-key': 'shared-key' } });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(b.headers.get('idempotent-replayed')).toBeNull();
    const query = await t.graphql({ query: ORGANIZATIONS, assertion: admin, headers: { 'idempotency-key': 'shared-key' } });
    expect(query.status).toBe(200);
  });

  it('never stores an answer that reveals a secret: its replay says the secret was already shown', async () => {
    const secretive = await startTestPlatform({ gatewayOverrides: { IDEMPOTENCY_SECRET_FIELDS: 'Mutation.renameOrganization' } });
    try {
      const seededHere = await secretive.seed();
      const call = async () =>
        secretive.graphql({
          query: RENAME,
          variables: { id: seededHere.organizationId, name: 'Shown once' },
          assertion: await secretive.adminAssertion(),
          headers: { 'idempotency-key': 'secret-1' },
        });
      expect((await call()).status).toBe(200);
      const again = await call();
      expect(again.status).toBe(409);
      expect(again.body.errors[0].extensions.code).toBe('IDEMPOTENCY_SECRET_ALREADY_SHOWN');
      expect(JSON.stringify(again.body)).not.toContain('Shown once');
    } finally {
      await secretive.close();
    }
  });

  it('refuses an invalid key', async () => {
    const res = await t.graphql({
      query: RENAME,
      variables: { id: seeded.organizationId, name: 'x' },
      assertion: await t.adminAssertion(),
      headers: { 'idempotency-key': 'x'.repeat(256) },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].extensions.code).toBe('IDEMPOTENCY_KEY_INVALID');
  });
});

describe('error audit, metrics and traces', () => {
  let t: TestPlatform;
  let tracing: Tracing;
  beforeAll(async () => {
    // Registered before the platform starts, so the gateway and subgraphs in this process share it.
    tracing = startTracing({ serviceName: 'e2e', exporter: 'memory' });
    t = await startTestPlatform({ gatewayOverrides: { RATE_LIMITS: JSON.stringify({ default: { limit: 1000, windowSeconds: WINDOW }, webhooks: { limit: 3, windowSeconds: WINDOW } }) } });
    // The user's third request is over it; the admin makes two, in the tests after it.
    await setPrincipalBudget(t, 2);
  });
  afterAll(async () => {
    await t?.close();
    await tracing?.shutdown();
  });

  it('answers representative 4xx paths with a correlation id and leaves one sanitized log line with the cause class', async () => {
    const user = await t.assertion({ subject: 'audited-user' });
    await awayFromMinuteEnd();
    const paths: Array<[string, () => Promise<{ status: number; body: any; headers: Headers }>, number, string, string]> = [
      ['no credential', () => t.graphql({ query: MY_ORGANIZATIONS }), 401, 'AUTH_UNAUTHENTICATED', 'authn'],
      ['a parse error', () => t.graphql({ query: '{', assertion: user }), 400, 'GRAPHQL_PARSE_FAILED', 'validation'],
      ['introspection', () => t.graphql({ query: '{ __schema { types { name } } }', assertion: user }), 403, 'GRAPHQL_INTROSPECTION_FORBIDDEN', 'authz'],
      ['over the rate limit', () => t.graphql({ query: MY_ORGANIZATIONS, assertion: user }), 429, 'RATE_LIMIT_EXCEEDED', 'validation'],
    ];
    for (const [name, call, status, code, errorClass] of paths) {
      const res = await call();
      expect([name, res.status]).toEqual([name, status]);
      const correlationId = res.headers.get('x-correlation-id');
      expect(res.body.errors[0].extensions).toEqual({ code, correlationId });
      await eventually(() => expect(linesFor(t, correlationId)).toHaveLength(1));
      expect(linesFor(t, correlationId)[0]).toMatchObject({ code, errorClass, status, level: 'warn' });
    }
    for (const raw of t.logs.raw()) expect(raw).not.toContain(user);
  });

  it('exposes the named series on the gateway and on a subgraph', async () => {
    await t.graphql({ query: 'query Joined { organizations { edges { node { id account { currency } } } } }', assertion: await t.adminAssertion() });
    const gateway = await (await fetch(`${t.platform.gatewayUrl}/metrics`)).text();
    expect(gateway).toMatch(/aif_http_request_duration_seconds_count\{[^}]*route="POST \/graphql"[^}]*operation="Joined"[^}]*outcome="ok"[^}]*\} 1/);
    expect(gateway).toMatch(/aif_subgraph_fetch_duration_seconds_count\{[^}]*subgraph="iam"/);
    expect(gateway).toMatch(/aif_rate_limit_decisions_total\{[^}]*outcome="allowed"/);
    expect(gateway).toContain('process_cpu_user_seconds_total');
    const iamUrl = new URL(t.platform.subgraphUrls.iam ?? '').origin;
    const iam = await (await fetch(`${iamUrl}/metrics`)).text();
    expect(iam).toMatch(/aif_http_request_duration_seconds_count\{[^}]*service="iam"[^}]*route="POST \/graphql"/);
  });

  it('covers the gateway span and the subgraph spans with one trace id', async () => {
    tracing.memoryExporter?.reset();
    const res = await t.graphql({ query: '{ organizations { edges { node { id account { currency } } } } }', assertion: await t.adminAssertion(), headers: { 'x-correlation-id': 'traced-0001' } });
    expect(res.status).toBe(200);
    await eventually(() => {
      const spans = tracing.memoryExporter?.getFinishedSpans() ?? [];
      const gatewaySpan = spans.find((span) => span.attributes['aif.service'] === 'gateway' && span.attributes['correlation.id'] === 'traced-0001');
      expect(gatewaySpan).toBeDefined();
      const traceId = gatewaySpan?.spanContext().traceId;
      const trace = spans.filter((span) => span.spanContext().traceId === traceId);
      const iamSpan = trace.find((span) => span.attributes['aif.service'] === 'iam');
      expect(iamSpan).toBeDefined();
      // The subgraph's span is a child of the gateway's fetch span, inside the gateway's request span.
      const gatewaySpanIds = new Set(trace.filter((span) => span !== iamSpan).map((span) => span.spanContext().spanId));
      expect(gatewaySpanIds.has(iamSpan?.parentSpanContext?.spanId ?? '')).toBe(true);
    });
  });
});
