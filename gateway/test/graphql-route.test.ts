import { randomBytes } from 'node:crypto';
import { buildSchema } from 'graphql';
import { Redis } from 'ioredis';
import { systemClock } from '@aifactory/clock';
import { createGraphQLErrorFormatter, startHttpServer, type RunningHttpServer } from '@aifactory/http';
import { createLogger } from '@aifactory/logging';
import { captureLogs, TEST_REDIS_URL, type CapturedLogs } from '@aifactory/testing';
import { IdempotencyStore } from '../src/edge/idempotency.js';
import { RateLimiter } from '../src/edge/rate-limiter.js';
import { configuredRateLimitPolicy } from '../src/edge/rate-limits.js';
import { gatewayGraphQLRoute } from '../src/graphql/graphql-route.js';
import { PreparedOperations } from '../src/graphql/prepared-operations.js';

const schema = buildSchema('type Query { hello(n: Int): String } type Mutation { touch: String }');
const limits = { depth: 20, height: 200, aliases: 30, rootFields: 20, tokens: 15_000 };

describe('the gateway GraphQL route when something unexpected fails', () => {
  let server: RunningHttpServer;
  let redis: Redis;
  let logs: CapturedLogs;
  const prefix = `aif:test:${randomBytes(6).toString('hex')}:`;

  beforeAll(async () => {
    logs = captureLogs();
    const logger = createLogger({ service: 'gateway', level: 'info', destination: logs.destination });
    redis = new Redis(TEST_REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 500 });
    await new Promise((resolve) => redis.once('ready', resolve));
    const unlimited = { limit: 1_000, windowSeconds: 60 };
    const route = gatewayGraphQLRoute({
      authenticate: async () => ({ type: 'user', subject: 'u-1', platformRoles: [], grants: [] }),
      operations: new PreparedOperations(schema, limits),
      schema,
      executor: async () => {
        throw new Error('invariant broken in plan node 7 for tenant acme');
      },
      limiter: new RateLimiter({ redis, keyPrefix: prefix, clock: systemClock, logger }),
      policy: configuredRateLimitPolicy({ default: unlimited, operations: {}, routes: {}, webhooks: unlimited }),
      idempotency: new IdempotencyStore({ redis, keyPrefix: prefix, ttlSeconds: 60, inFlightTtlSeconds: 10, logger }),
      secretFields: new Set(),
      bodyLimitBytes: 1024 * 1024,
      logger,
      formatError: createGraphQLErrorFormatter(logger),
    });
    server = await startHttpServer({ logger, routes: { 'POST /graphql': route }, shutdownGraceMs: 1_000 }, 0);
  });
  afterAll(async () => {
    await server?.close();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis?.disconnect();
  });

  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

  it('answers INTERNAL_ERROR with no detail and logs one line with the cause under the correlation id', async () => {
    const res = await post({ query: '{ hello }' }, { 'x-correlation-id': 'unexpected-0001' });
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ errors: [{ message: 'Internal error', extensions: { code: 'INTERNAL_ERROR', correlationId: 'unexpected-0001' } }] });
    const lines = logs.lines().filter((line) => line.correlationId === 'unexpected-0001');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', status: 500, code: 'INTERNAL_ERROR', errorClass: 'local_defect' });
    expect(JSON.stringify(lines[0]?.cause)).toContain('invariant broken in plan node 7');
  });

  it('lets a keyed mutation that failed unexpectedly be retried instead of replaying the failure', async () => {
    const first = await post({ query: 'mutation { touch }' }, { 'idempotency-key': 'retry-me' });
    expect(first.status).toBe(500);
    const again = await post({ query: 'mutation { touch }' }, { 'idempotency-key': 'retry-me' });
    expect(again.status).toBe(500);
    expect(again.headers.get('idempotent-replayed')).toBeNull();
  });

  it('refuses variables that do not fit the operation before executing', async () => {
    const res = await post({ query: 'query Q($n: Int!) { hello(n: $n) }', variables: { n: 'seven' } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]?.extensions.code).toBe('BAD_REQUEST_INVALID_INPUT');
  });
});
