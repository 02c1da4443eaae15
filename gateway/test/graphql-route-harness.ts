import { randomBytes } from 'node:crypto';
import type { GraphQLSchema } from 'graphql';
import { Redis } from 'ioredis';
import { systemClock } from '@aifactory/clock';
import { createGraphQLErrorFormatter, startHttpServer } from '@aifactory/http';
import type { Logger } from '@aifactory/logging';
import { TEST_REDIS_URL } from '@aifactory/testing';
import { IdempotencyStore } from '../src/edge/idempotency.js';
import { RateLimiter } from '../src/edge/rate-limiter.js';
import { configuredRateLimitPolicy } from '../src/edge/rate-limits.js';
import { gatewayGraphQLRoute, type GraphQLRouteDeps } from '../src/graphql/graphql-route.js';
import { PreparedOperations } from '../src/graphql/prepared-operations.js';

const limits = { depth: 20, height: 200, aliases: 30, rootFields: 20, tokens: 15_000 };

export interface GraphQLRouteHarness {
  /** POSTs `body` as JSON to the route's /graphql. */
  post(body: unknown, headers?: Record<string, string>): Promise<Response>;
  /** Stops the server and removes this harness's Redis keys. */
  close(): Promise<void>;
}

/**
 * The gateway's GraphQL route alone on a free port, in front of `executor`:
 * every caller is user u-1, no rate limit bites, and its rate limits and
 * idempotency records live under a Redis key prefix of its own.
 */
export async function startGraphQLRoute(schema: GraphQLSchema, executor: GraphQLRouteDeps['executor'], logger: Logger): Promise<GraphQLRouteHarness> {
  const prefix = `aif:test:${randomBytes(6).toString('hex')}:`;
  const redis = new Redis(TEST_REDIS_URL, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 500 });
  const closeRedis = async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  };
  try {
    await new Promise((resolve) => redis.once('ready', resolve));
    const unlimited = { limit: 1_000, windowSeconds: 60 };
    const route = gatewayGraphQLRoute({
      authenticate: async () => ({ type: 'user', subject: 'u-1', platformRoles: [], grants: [] }),
      operations: new PreparedOperations(schema, limits),
      schema,
      executor,
      limiter: new RateLimiter({ redis, keyPrefix: prefix, clock: systemClock, logger }),
      policy: configuredRateLimitPolicy({ default: unlimited, operations: {}, routes: {}, webhooks: unlimited }),
      idempotency: new IdempotencyStore({ redis, keyPrefix: prefix, ttlSeconds: 60, inFlightTtlSeconds: 10, logger }),
      secretFields: new Set(),
      bodyLimitBytes: 1024 * 1024,
      logger,
      formatError: createGraphQLErrorFormatter(logger),
    });
    const server = await startHttpServer({ logger, routes: { 'POST /graphql': route }, shutdownGraceMs: 1_000 }, 0);
    return {
      post: (body, headers = {}) =>
        fetch(`${server.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) }),
      close: async () => {
        await server.close();
        await closeRedis();
      },
    };
  } catch (error) {
    redis.disconnect();
    throw error;
  }
}
