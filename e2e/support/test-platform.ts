import { generateAssertionKey, startJwksServer, signAssertion, type AssertionClaims, type AssertionKey, type JwksServer } from '@aifactory/dev-identity';
import { startPlatform, type PlatformWiring, type RunningPlatform } from '@aifactory/devstack';
import { createLogger } from '@aifactory/logging';
import { captureLogs, createTestDatabase, tempKeyDir, type CapturedLogs, type TestDatabase, type TempKeys } from '@aifactory/testing';

export const ISSUER = 'https://authenticate.test.localhost';
export const AUDIENCE = 'aifactory.test.localhost';
export const ROLE_GROUPS = { platform_admin: ['test-platform-admins'], internal_developer: ['test-developers'] };
const SUBGRAPH_NAMES = new Set(['iam', 'billing', 'evidence', 'gpuaas', 'appplatform', 'tokenfactory']);

export interface GraphQLCall {
  query?: string;
  operationName?: string;
  variables?: Record<string, unknown>;
  assertion?: string;
  headers?: Record<string, string>;
  /** Sent as-is instead of a JSON body built from query/variables. */
  rawBody?: string;
}

export interface TestPlatform {
  db: TestDatabase;
  platform: RunningPlatform;
  logs: CapturedLogs;
  jwks: JwksServer;
  keys: TempKeys;
  assertionKey: AssertionKey;
  internalKeyFiles: { privateKeyFile: string; publicKeyFile: string };
  assertion(overrides?: Partial<AssertionClaims>, key?: AssertionKey): Promise<string>;
  adminAssertion(): Promise<string>;
  graphql(call: GraphQLCall): Promise<{ status: number; body: any; headers: Headers }>;
  /** GraphQL requests that reached any subgraph, from the subgraphs' own request logs. */
  subgraphHits(): number;
  close(): Promise<void>;
}

/** The whole platform in this process, on a private database, a private JWKS and private keys. */
export async function startTestPlatform(): Promise<TestPlatform> {
  const db = await createTestDatabase();
  const keys = await tempKeyDir();
  const internalKeyFiles = await keys.ed25519('internal');
  const assertionKey = await generateAssertionKey();
  const jwks = await startJwksServer([assertionKey]);
  const logs = captureLogs();
  const wiring: PlatformWiring = {
    layout: db.layout,
    poolSize: 2,
    internalPrivateKeyFile: internalKeyFiles.privateKeyFile,
    internalPublicKeyFiles: [internalKeyFiles.publicKeyFile],
    jwksUrl: jwks.url,
    issuer: ISSUER,
    audience: AUDIENCE,
    roleGroups: ROLE_GROUPS,
    logLevel: 'info',
    jwksCooldownMs: 1,
  };
  let platform: RunningPlatform;
  try {
    platform = await startPlatform(wiring, (service) => createLogger({ service, level: 'info', destination: logs.destination }));
  } catch (error) {
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
    assertion,
    adminAssertion: () => assertion({ subject: 'admin-1', email: 'admin@example.com', groups: ['test-platform-admins'] }),
    graphql: async (call) => {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...call.headers };
      if (call.assertion) headers['x-pomerium-jwt-assertion'] = call.assertion;
      const body = call.rawBody ?? JSON.stringify({ query: call.query, operationName: call.operationName, variables: call.variables });
      const res = await fetch(`${platform.gatewayUrl}/graphql`, { method: 'POST', headers, body });
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
      logs.lines().filter((line) => SUBGRAPH_NAMES.has(line.service) && line.msg === 'request' && line.path === '/graphql').length,
    close: async () => {
      await platform.close();
      await jwks.close();
      await keys.cleanup();
      await db.drop();
    },
  };
}
