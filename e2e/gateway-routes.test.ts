import { eventually } from './support/eventually.js';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

// Windows are aligned to the clock: a day-long one makes a test that straddles a boundary all but impossible.
const WINDOW = 86_400;
const WEBHOOK_BODY_LIMIT = 256;
const CONSOLE_ORIGIN = 'https://console.example.com';
const SUBGRAPHS = ['appplatform', 'billing', 'evidence', 'gpuaas', 'iam', 'tokenfactory'];
const AUDIT_HEADER = 'id,occurredAt,recordedAt,actorType,actorId,action,organizationId,departmentId,projectId,correlationId,payload';

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

async function call(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: res.headers, text, body };
}

/** The one request line a service logged for a correlation id (the gateway passes its id on to the subgraph it calls). */
function requestLines(t: TestPlatform, service: string, correlationId: string | null) {
  return t.logs.lines().filter((line) => line.service === service && line.correlationId === correlationId && typeof line.status === 'number');
}

function originOf(t: TestPlatform, subgraph: string): string {
  return new URL(t.platform.subgraphUrls[subgraph] ?? '').origin;
}

describe('gateway routes besides GraphQL', () => {
  let t: TestPlatform;
  beforeAll(async () => {
    t = await startTestPlatform({
      gatewayOverrides: {
        CORS_ALLOWED_ORIGINS: CONSOLE_ORIGIN,
        WEBHOOK_BODY_LIMIT_BYTES: String(WEBHOOK_BODY_LIMIT),
        // A second provider of billing's, so the rate-limit test has a per-source budget of its own.
        WEBHOOK_ROUTES: JSON.stringify({ stripe: 'billing', 'stripe-burst': 'billing' }),
        RATE_LIMITS: JSON.stringify({ default: { limit: 1000, windowSeconds: WINDOW }, webhooks: { limit: 2, windowSeconds: WINDOW } }),
      },
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  describe('/api/<subgraph>/...', () => {
    const exportUrl = () => `${t.platform.gatewayUrl}/api/evidence/audit-events.csv`;

    beforeAll(async () => {
      const pg = await t.db.admin();
      await pg.query(
        `INSERT INTO evidence.audit_events (occurred_at, actor_type, actor_id, action, correlation_id, payload)
         SELECT timestamptz '2025-01-01T00:00:00Z' + i * interval '1 second', 'user', 'u' || i, 'organization.created', 'routes-' || i, jsonb_build_object('n', i)
         FROM generate_series(1, 3) AS i`,
      );
    });

    it('refuses an export without a Pomerium assertion with 401 in the REST envelope', async () => {
      const res = await call(exportUrl());

      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: { code: 'AUTH_UNAUTHENTICATED', message: expect.any(String), correlationId: res.headers.get('x-correlation-id') } });
      expect(requestLines(t, 'evidence', res.headers.get('x-correlation-id'))).toHaveLength(0);
    });

    it("relays the evidence subgraph's 403 to a user who is no platform admin", async () => {
      const res = await call(exportUrl(), { headers: { 'x-pomerium-jwt-assertion': await t.assertion({ subject: 'routes-user' }) } });

      expect(res.status).toBe(403);
      expect(res.body.error).toMatchObject({ code: 'AUTH_FORBIDDEN', correlationId: res.headers.get('x-correlation-id') });
      // The refusal is the subgraph's own: it saw the call under the same correlation id.
      await eventually(() => expect(requestLines(t, 'evidence', res.headers.get('x-correlation-id'))).toMatchObject([{ status: 403, code: 'AUTH_FORBIDDEN' }]));
    });

    it('streams the audit log as CSV to a platform admin', async () => {
      const res = await call(exportUrl(), { headers: { 'x-pomerium-jwt-assertion': await t.adminAssertion() } });

      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      expect(res.headers.get('content-disposition')).toBe('attachment; filename="audit-events.csv"');
      const lines = res.text.split('\r\n').filter((line) => line !== '');
      expect(lines[0]).toBe(AUDIT_HEADER);
      expect(lines.slice(1).map((line) => line.split(',')[9])).toEqual(['routes-1', 'routes-2', 'routes-3']);
    });

    it('answers 404 for a name that is no subgraph', async () => {
      const res = await call(`${t.platform.gatewayUrl}/api/nope/x`, { headers: { 'x-pomerium-jwt-assertion': await t.adminAssertion() } });

      expect(res.status).toBe(404);
      expect(res.body.error).toMatchObject({ code: 'NOT_FOUND' });
    });

    it("refuses a subgraph's own REST route called directly without an internal JWT", async () => {
      const res = await call(`${originOf(t, 'evidence')}/api/audit-events.csv`, { headers: { 'x-pomerium-jwt-assertion': await t.adminAssertion() } });

      expect(res.status).toBe(401);
      expect(res.body.error).toMatchObject({ code: 'INTERNAL_AUTH_UNAUTHENTICATED' });
    });
  });

  describe('/webhooks/<provider>', () => {
    const deliver = (provider: string, body: string) =>
      call(`${t.platform.gatewayUrl}/webhooks/${provider}`, { method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': 't=1,v1=abc' }, body });

    it("reaches billing's Stripe webhook, which verifies the signature on the raw bytes, and relays billing's 400", async () => {
      const res = await deliver('stripe', '{"type":"checkout.session.completed"}');

      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'WEBHOOK_SIGNATURE_INVALID', correlationId: res.headers.get('x-correlation-id') });
      await eventually(() => expect(requestLines(t, 'billing', res.headers.get('x-correlation-id'))).toMatchObject([{ path: '/webhooks/stripe', status: 400 }]));
    });

    it('refuses a body over the webhook limit with 413 without calling billing', async () => {
      const res = await deliver('stripe', JSON.stringify({ padding: 'x'.repeat(WEBHOOK_BODY_LIMIT) }));

      expect(res.status).toBe(413);
      expect(res.body.error).toMatchObject({ code: 'BAD_REQUEST_BODY_TOO_LARGE' });
      const correlationId = res.headers.get('x-correlation-id');
      await eventually(() => expect(requestLines(t, 'gateway', correlationId)).toHaveLength(1));
      expect(requestLines(t, 'billing', correlationId)).toHaveLength(0);
    });

    it('refuses deliveries beyond the per-source limit with 429 and Retry-After, without calling billing', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 2; i += 1) statuses.push((await deliver('stripe-burst', '{}')).status);
      const limited = await deliver('stripe-burst', '{}');

      expect(statuses).toEqual([404, 404]);
      expect(limited.status).toBe(429);
      expect(limited.body.error).toMatchObject({ code: 'RATE_LIMIT_EXCEEDED' });
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
      const correlationId = limited.headers.get('x-correlation-id');
      await eventually(() => expect(requestLines(t, 'gateway', correlationId)).toHaveLength(1));
      expect(requestLines(t, 'billing', correlationId)).toHaveLength(0);
    });
  });

  describe('GET /status', () => {
    const status = (assertion?: string) => call(`${t.platform.gatewayUrl}/status`, assertion ? { headers: { 'x-pomerium-jwt-assertion': assertion } } : {});

    it('refuses a caller without an assertion with 401', async () => {
      const res = await status();

      expect(res.status).toBe(401);
      expect(res.body.error).toMatchObject({ code: 'AUTH_UNAUTHENTICATED' });
    });

    it('refuses a user who is no platform admin with 403', async () => {
      const res = await status(await t.assertion({ subject: 'status-user' }));

      expect(res.status).toBe(403);
      expect(res.body.error).toMatchObject({ code: 'AUTH_FORBIDDEN' });
    });

    it("reports the gateway's Redis and NATS and every subgraph with its own dependencies to a platform admin", async () => {
      const res = await status(await t.adminAssertion());

      expect(res.status).toBe(200);
      expect(res.body.status).toBe('ok');
      expect(res.body.gateway.redis).toMatchObject({ status: 'up', latencyMs: expect.any(Number) });
      expect(res.body.gateway.nats).toMatchObject({ status: 'up', latencyMs: expect.any(Number) });
      expect(Object.keys(res.body.subgraphs).sort()).toEqual(SUBGRAPHS);
      for (const name of SUBGRAPHS) {
        const subgraph = res.body.subgraphs[name];
        expect([name, subgraph.status, typeof subgraph.latencyMs]).toEqual([name, 'up', 'number']);
        for (const dependency of ['postgres', 'redis', 'nats', 'accessModel']) {
          expect([name, dependency, subgraph.dependencies[dependency].status]).toEqual([name, dependency, 'up']);
        }
      }
    });
  });

  describe('CORS on /graphql', () => {
    const QUERY = JSON.stringify({ query: '{ organizations { edges { node { id } } } }' });

    it('refuses a foreign origin with 403 before any subgraph is called', async () => {
      const hitsBefore = t.subgraphHits();
      const res = await call(`${t.platform.gatewayUrl}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: 'https://evil.example.com', 'x-pomerium-jwt-assertion': await t.adminAssertion() },
        body: QUERY,
      });

      expect(res.status).toBe(403);
      expect(res.body.errors[0].extensions).toEqual({ code: 'BAD_REQUEST_ORIGIN_NOT_ALLOWED', correlationId: res.headers.get('x-correlation-id') });
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      await eventually(() => expect(requestLines(t, 'gateway', res.headers.get('x-correlation-id'))).toHaveLength(1));
      expect(t.subgraphHits()).toBe(hitsBefore);
    });

    it('answers the preflight of an allowed origin with 204 and the allowed headers', async () => {
      const res = await call(`${t.platform.gatewayUrl}/graphql`, {
        method: 'OPTIONS',
        headers: { origin: CONSOLE_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, idempotency-key' },
      });

      expect(res.status).toBe(204);
      expect(res.headers.get('access-control-allow-origin')).toBe(CONSOLE_ORIGIN);
      expect(res.headers.get('access-control-allow-headers')).toContain('idempotency-key');
      expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    });

    it('answers an allowed origin with its CORS headers, rate-limit headers exposed', async () => {
      const res = await call(`${t.platform.gatewayUrl}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: CONSOLE_ORIGIN, 'x-pomerium-jwt-assertion': await t.adminAssertion() },
        body: QUERY,
      });

      expect(res.status).toBe(200);
      expect(res.body.data).toEqual({ organizations: { edges: expect.any(Array) } });
      expect(res.headers.get('access-control-allow-origin')).toBe(CONSOLE_ORIGIN);
      expect(res.headers.get('access-control-expose-headers')).toContain('x-ratelimit-remaining');
    });

    it("answers a request from the gateway's own origin", async () => {
      const res = await call(`${t.platform.gatewayUrl}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: t.platform.gatewayUrl, 'x-pomerium-jwt-assertion': await t.adminAssertion() },
        body: QUERY,
      });

      expect(res.status).toBe(200);
      expect(res.body.data).toEqual({ organizations: { edges: expect.any(Array) } });
    });
  });

  describe('subgraph readiness', () => {
    it("reports Postgres, Redis, NATS and IAM's access read model, each with its latency", async () => {
      const res = await call(`${originOf(t, 'iam')}/readyz`);

      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        status: 'ready',
        subgraph: 'iam',
        dependencies: {
          postgres: { status: 'up', latencyMs: expect.any(Number) },
          redis: { status: 'up', latencyMs: expect.any(Number) },
          nats: { status: 'up', latencyMs: expect.any(Number) },
          accessModel: { status: 'up', latencyMs: expect.any(Number) },
        },
      });
    });
  });
});
