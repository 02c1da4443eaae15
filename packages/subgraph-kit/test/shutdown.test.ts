import { parse } from 'graphql';
import { parseConfig } from '@aifactory/config';
import { createLogger } from '@aifactory/logging';
import { InternalTokenSigner, loadSigningKey } from '@aifactory/service-auth';
import { captureLogs, tempKeyDir, type TempKeys } from '@aifactory/testing';
import { startSubgraph, subgraphConfigSchema, type RunningSubgraph } from '../src/index.js';

const typeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
  type Query { slow(ms: Int!): String! }
`);

describe('subgraph shutdown', () => {
  let keys: TempKeys;
  let subgraph: RunningSubgraph;
  let token: string;
  const logs = captureLogs();

  beforeAll(async () => {
    keys = await tempKeyDir();
    const files = await keys.ed25519('internal');
    const config = parseConfig(subgraphConfigSchema, {
      PORT: '0',
      DATABASE_URL: 'postgresql://unused@127.0.0.1:5432/unused',
      INTERNAL_JWT_PUBLIC_KEY_FILES: files.publicKeyFile,
      SHUTDOWN_GRACE_MS: '5000',
    });
    subgraph = await startSubgraph(
      {
        name: 'slowpoke',
        typeDefs,
        resolvers: { Query: { slow: async (_root: unknown, args: { ms: number }) => new Promise((resolve) => setTimeout(() => resolve(`slept ${args.ms}`), args.ms)) } },
        extendContext: (base) => base,
        ready: async () => undefined,
      },
      config,
      createLogger({ service: 'slowpoke', destination: logs.destination }),
    );
    const signer = new InternalTokenSigner({ issuer: 'gateway', key: await loadSigningKey(files.privateKeyFile) });
    token = await signer.mint({ audience: 'slowpoke', correlationId: 'shutdown-0001', principal: { type: 'service', subject: 'test', platformRoles: [], grants: [] } });
  });
  afterAll(async () => {
    await subgraph.close();
    await keys.cleanup();
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
