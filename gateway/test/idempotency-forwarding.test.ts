import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { buildSchema } from 'graphql';
import { Redis } from 'ioredis';
import { systemClock } from '@aifactory/clock';
import { createGraphQLErrorFormatter, startHttpServer, type RunningHttpServer } from '@aifactory/http';
import { createLogger } from '@aifactory/logging';
import { InternalTokenSigner } from '@aifactory/service-auth';
import type { Histogram } from '@aifactory/telemetry';
import { TEST_REDIS_URL } from '@aifactory/testing';
import { IdempotencyStore } from '../src/edge/idempotency.js';
import { RateLimiter } from '../src/edge/rate-limiter.js';
import { configuredRateLimitPolicy } from '../src/edge/rate-limits.js';
import { gatewayGraphQLRoute } from '../src/graphql/graphql-route.js';
import { PreparedOperations } from '../src/graphql/prepared-operations.js';
import { SubgraphSource, type GatewayContext } from '../src/subgraph-source.js';

const schema = buildSchema('type Query { hello: String } type Mutation { touch: String }');
const limits = { depth: 20, height: 200, aliases: 30, rootFields: 20, tokens: 15_000 };
const noMetrics = { observe: () => undefined } as unknown as Histogram<'subgraph' | 'outcome'>;

/**
 * The gateway route in front of one subgraph source, as the executor would
 * call it: what the subgraph receives is what a mutation's Idempotency-Key
 * turns into on the way through.
 */
describe('forwarding the Idempotency-Key to subgraphs', () => {
  let upstream: Server;
  let server: RunningHttpServer;
  let redis: Redis;
  const seen: IncomingHttpHeaders[] = [];
  const prefix = `aif:test:${randomBytes(6).toString('hex')}:`;

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ data: { touch: 'ok' } }));
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const source = new SubgraphSource({
      name: 'billing',
      url: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/graphql`,
      signer: new InternalTokenSigner({ issuer: 'gateway', key: { kid: 'test', privateKey: generateKeyPairSync('ed25519').privateKey } }),
      timeoutMs: 2_000,
      fetchDuration: noMetrics,
    });

    const logger = createLogger({ service: 'gateway', level: 'silent' });
    redis = new Redis(TEST_REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 500 });
    await new Promise((resolve) => redis.once('ready', resolve));
    const unlimited = { limit: 1_000, windowSeconds: 60 };
    const route = gatewayGraphQLRoute({
      authenticate: async () => ({ type: 'user', subject: 'u-1', platformRoles: [], grants: [] }),
      operations: new PreparedOperations(schema, limits),
      schema,
      executor: async (requestContext) => {
        // What the query planner hands a data source, less what SubgraphSource does not read.
        const response = await source.process({
          request: { query: requestContext.source, operationName: requestContext.operationName ?? undefined },
          context: requestContext.context as GatewayContext,
        } as unknown as GraphQLDataSourceProcessOptions<GatewayContext>);
        return { data: response.data ?? null };
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
    upstream?.closeAllConnections();
    await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis?.disconnect();
  });
  beforeEach(() => {
    seen.length = 0;
  });

  const post = (query: string, headers: Record<string, string> = {}) =>
    fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query }) });

  it('passes a mutation’s key on as an idempotency-key header, beside the internal token', async () => {
    const key = `checkout-${randomUUID()}`;
    const res = await post('mutation { touch }', { 'idempotency-key': key });
    expect(res.status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ 'idempotency-key': key, authorization: expect.stringMatching(/^Bearer /) });
  });

  it('sends none for a mutation without a key', async () => {
    expect((await post('mutation { touch }')).status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0]).not.toHaveProperty('idempotency-key');
  });

  it('sends none for a query, whose key the gateway ignores', async () => {
    expect((await post('{ hello }', { 'idempotency-key': randomUUID() })).status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0]).not.toHaveProperty('idempotency-key');
  });

  it('never reaches a subgraph with a malformed key', async () => {
    const res = await post('mutation { touch }', { 'idempotency-key': 'k'.repeat(256) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]?.extensions.code).toBe('IDEMPOTENCY_KEY_INVALID');
    expect(seen).toHaveLength(0);
  });

  it('replays a repeated keyed mutation at the gateway: the subgraph sees the key once', async () => {
    const key = `retry-${randomUUID()}`;
    await post('mutation { touch }', { 'idempotency-key': key });
    const replay = await post('mutation { touch }', { 'idempotency-key': key });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(seen).toHaveLength(1);
  });
});
