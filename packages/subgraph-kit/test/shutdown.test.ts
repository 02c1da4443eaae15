import { parse } from 'graphql';
import { AccessModelPublisher } from '@aifactory/access-model';
import { buildCatalogSnapshot } from '@aifactory/authz';
import { parseConfig } from '@aifactory/config';
import { loadRegistryData } from '@aifactory/contracts';
import { createLogger } from '@aifactory/logging';
import { InternalTokenSigner, loadSigningKey } from '@aifactory/service-auth';
import { captureLogs, deleteEventStreams, tempKeyDir, TEST_NATS_URL, uniqueEventSubjectPrefix, type TempKeys } from '@aifactory/testing';
import { connect } from '@nats-io/transport-node';
import { startSubgraph, subgraphConfigSchema, type RunningSubgraph } from '../src/index.js';

const typeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
  type Query { slow(ms: Int!): String! }
`);

/** Every subgraph audits its denies as `<name>.access.deny`, so it must carry a registered publisher's name. */
const NAME = 'evidence';

/** Plays iam's part: a request is served only once the role catalogue is in this test's own read-model bucket. */
async function publishCatalog(subjectPrefix: string): Promise<void> {
  const nc = await connect({ servers: TEST_NATS_URL, name: 'shutdown-test-iam' });
  try {
    const publisher = await AccessModelPublisher.open({ nc, subjectPrefix, logger: createLogger({ service: 'iam', level: 'silent' }) });
    const registry = loadRegistryData();
    await publisher.putCatalog(
      buildCatalogSnapshot({ scopes: registry.scopes, roles: registry.roles, registryVersions: { scopes: 1, roles: 1 }, publishedAt: new Date().toISOString() }),
    );
  } finally {
    await nc.close();
  }
}

describe('subgraph shutdown', () => {
  let keys: TempKeys;
  let subgraph: RunningSubgraph;
  let token: string;
  const logs = captureLogs();
  const eventSubjectPrefix = uniqueEventSubjectPrefix();

  beforeAll(async () => {
    keys = await tempKeyDir();
    const files = await keys.ed25519('internal');
    await publishCatalog(eventSubjectPrefix);
    const config = parseConfig(subgraphConfigSchema, {
      PORT: '0',
      DATABASE_URL: 'postgresql://unused@127.0.0.1:5432/unused',
      INTERNAL_JWT_PUBLIC_KEY_FILES: files.publicKeyFile,
      SHUTDOWN_GRACE_MS: '5000',
      EVENT_SUBJECT_PREFIX: eventSubjectPrefix,
    });
    subgraph = await startSubgraph(
      {
        name: NAME,
        typeDefs,
        resolvers: { Query: { slow: async (_root: unknown, args: { ms: number }) => new Promise((resolve) => setTimeout(() => resolve(`slept ${args.ms}`), args.ms)) } },
        extendContext: (base) => base,
        ready: async () => undefined,
      },
      config,
      createLogger({ service: NAME, destination: logs.destination }),
    );
    const signer = new InternalTokenSigner({ issuer: 'gateway', key: await loadSigningKey(files.privateKeyFile) });
    token = await signer.mint({ audience: NAME, correlationId: 'shutdown-0001', principal: { type: 'service', subject: 'test', platformRoles: [], grants: [] } });
  });
  afterAll(async () => {
    await subgraph?.close();
    await keys?.cleanup();
    await deleteEventStreams(eventSubjectPrefix);
  });

  it('finishes in-flight requests, then stops accepting new ones', async () => {
    const inFlight = fetch(`${subgraph.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ slow(ms: 400) }' }),
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closing = subgraph.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await expect(fetch(`${subgraph.url}/healthz`)).rejects.toThrow();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { slow: 'slept 400' } });
    await closing;
  });
});
