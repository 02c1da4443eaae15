import { randomBytes } from 'node:crypto';
import { generateAssertionKey, startJwksServer, signAssertion, type AssertionClaims, type AssertionKey, type JwksServer } from '@aifactory/dev-identity';
import { runDevSeed, startPlatform, type PlatformWiring, type RunningPlatform, type SeedResult } from '@aifactory/devstack';
import { createLogger } from '@aifactory/logging';
import type { FakeStripe } from '@aifactory/stripe-fake';
import {
  deleteRedisKeys,
  captureLogs,
  createTestDatabase,
  deleteEventStreams,
  tempKeyDir,
  TEST_REDIS_URL,
  uniqueEventSubjectPrefix,
  type CapturedLogs,
  type TestDatabase,
  type TempKeys,
} from '@aifactory/testing';

export const ISSUER = 'https://authenticate.test.localhost';
export const AUDIENCE = 'aifactory.test.localhost';
export const ROLE_GROUPS = { platform_admin: ['test-platform-admins'], internal_developer: ['test-developers'] };
/** Every request leaves exactly one of these lines, whatever its outcome. */
const REQUEST_LINES = new Set(['request', 'request refused', 'request failed']);
const SUBGRAPH_NAMES = new Set(['iam', 'billing', 'evidence', 'gpuaas', 'appplatform', 'tokenfactory']);

export interface GraphQLCall {
  query?: string;
  operationName?: string;
  variables?: Record<string, unknown>;
  assertion?: string;
  headers?: Record<string, string>;
  /** Sent as-is instead of a JSON body built from query/variables. */
  rawBody?: string;
  /** Another gateway instance than the platform's first (`platform.startAnotherGateway()`). */
  gatewayUrl?: string;
}

export interface TestPlatform {
  db: TestDatabase;
  platform: RunningPlatform;
  logs: CapturedLogs;
  jwks: JwksServer;
  keys: TempKeys;
  assertionKey: AssertionKey;
  internalKeyFiles: { privateKeyFile: string; publicKeyFile: string };
  apiKeyPepperFile: string;
  /** This platform's fake Stripe (billing's STRIPE_API_URL); its events go to the gateway's /webhooks/stripe. */
  stripe: FakeStripe;
  assertion(overrides?: Partial<AssertionClaims>, key?: AssertionKey): Promise<string>;
  adminAssertion(): Promise<string>;
  graphql(call: GraphQLCall): Promise<{ status: number; body: any; headers: Headers }>;
  /** GraphQL requests that reached any subgraph, from the subgraphs' own request logs. */
  subgraphHits(): number;
  redisKeyPrefix: string;
  /** Every subject this platform publishes starts with `<prefix>.`, in streams named `<PREFIX>_...`; close() deletes them. */
  eventSubjectPrefix: string;
  /** The dev seed on this platform's database, its events under this platform's prefix. */
  seed(): Promise<SeedResult>;
  close(): Promise<void>;
}

/** The whole platform in this process, on a private database, a private JWKS and private keys. */
export interface TestPlatformOptions {
  /** Gateway variables for this test: limits, rate-limit rules, CORS origins. */
  gatewayOverrides?: Record<string, string>;
}
export async function startTestPlatform(options: TestPlatformOptions = {}): Promise<TestPlatform> {
  const redisKeyPrefix = `aif:test:${randomBytes(6).toString('hex')}:`;
  const eventSubjectPrefix = uniqueEventSubjectPrefix();
  const db = await createTestDatabase();
  const keys = await tempKeyDir();
  const internalKeyFiles = await keys.ed25519('internal');
  const apiKeyPepperFile = await keys.pepper('api-keys');
  const assertionKey = await generateAssertionKey();
  const jwks = await startJwksServer([assertionKey]);
  const logs = captureLogs();
  const wiring: PlatformWiring = {
    layout: db.layout,
    // With each subgraph's relay LISTEN connection, 2 per subgraph (README: connection budget).
    poolSize: 1,
    internalPrivateKeyFile: internalKeyFiles.privateKeyFile,
    internalPublicKeyFiles: [internalKeyFiles.publicKeyFile],
    apiKeyPepperFile,
    jwksUrl: jwks.url,
    issuer: ISSUER,
    audience: AUDIENCE,
    roleGroups: ROLE_GROUPS,
    logLevel: 'info',
    jwksCooldownMs: 1,
    redisKeyPrefix,
    eventSubjectPrefix,
    gatewayOverrides: { REDIS_URL: TEST_REDIS_URL, ...options.gatewayOverrides },
  };
  let platform: RunningPlatform;
  try {
    platform = await startPlatform(wiring, (service) => createLogger({ service, level: 'info', destination: logs.destination }));
  } catch (error) {
    await deleteEventStreams(eventSubjectPrefix);
    await jwks.close();
    await keys.cleanup();
    await db.drop();
    throw error;
  }
  const assertion = (overrides: Partial<AssertionClaims> = {}, key = assertionKey) =>
    signAssertion(key, { issuer: ISSUER, audience: AUDIENCE, subject: 'user-1', email: 'alice@example.com', ...overrides });
  return {
    db,
    platform,
    logs,
    jwks,
    keys,
    assertionKey,
    internalKeyFiles,
    apiKeyPepperFile,
    stripe: platform.stripe,
    assertion,
    adminAssertion: () => assertion({ subject: 'admin-1', email: 'admin@example.com', groups: ['test-platform-admins'] }),
    graphql: async (call) => {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...call.headers };
      if (call.assertion) headers['x-pomerium-jwt-assertion'] = call.assertion;
      const body = call.rawBody ?? JSON.stringify({ query: call.query, operationName: call.operationName, variables: call.variables });
      const res = await fetch(`${call.gatewayUrl ?? platform.gatewayUrl}/graphql`, { method: 'POST', headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // left as text: the assertion that follows shows it
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    subgraphHits: () =>
      logs.lines().filter((line) => SUBGRAPH_NAMES.has(line.service) && REQUEST_LINES.has(line.msg) && line.path === '/graphql').length,
    redisKeyPrefix,
    eventSubjectPrefix,
    seed: () => runDevSeed(db.layout, { eventSubjectPrefix }),
    close: async () => {
      await platform.close();
      await deleteRedisKeys(redisKeyPrefix);
      await deleteEventStreams(eventSubjectPrefix);
      await jwks.close();
      await keys.cleanup();
      await db.drop();
    },
  };
}
