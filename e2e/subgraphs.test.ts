import { readFile } from 'node:fs/promises';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { graphql, parse } from 'graphql';
import { ManualClock } from '@aifactory/clock';
import { composeSupergraph, readSupergraphConfig, SUPERGRAPH_CONFIG, SUPERGRAPH_FILE } from '@aifactory/devstack';
import { InternalTokenSigner, loadSigningKey, type Principal } from '@aifactory/service-auth';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

const ORGANIZATIONS = '{ organizations { edges { node { id } } } }';
const admin: Principal = { type: 'user', subject: 'admin-1', platformRoles: ['platform_admin'], grants: [] };

describe('subgraphs called directly', () => {
  let t: TestPlatform;
  let signer: InternalTokenSigner;

  beforeAll(async () => {
    t = await startTestPlatform();
    signer = new InternalTokenSigner({ issuer: 'gateway', key: await loadSigningKey(t.internalKeyFiles.privateKeyFile) });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function callSubgraph(subgraph: string, query: string, token?: string) {
    const res = await fetch(t.platform.subgraphUrls[subgraph]!, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query }),
    });
    return { status: res.status, body: (await res.json()) as any };
  }

  const mint = (audience: string, s = signer) => s.mint({ audience, principal: admin, correlationId: 'direct-call-0001' });

  it('refuses a call with no internal JWT', async () => {
    const res = await callSubgraph('iam', ORGANIZATIONS);
    expect(res.status).toBe(401);
    expect(res.body.errors[0].extensions.code).toBe('INTERNAL_AUTH_UNAUTHENTICATED');
  });

  it('refuses an internal JWT signed by a key it does not trust', async () => {
    const other = await t.keys.ed25519('forger');
    const forger = new InternalTokenSigner({ issuer: 'gateway', key: await loadSigningKey(other.privateKeyFile) });
    expect((await callSubgraph('iam', ORGANIZATIONS, await mint('iam', forger))).status).toBe(401);
  });

  it('refuses an expired internal JWT', async () => {
    const past = new ManualClock(Date.now() - 5 * 60_000);
    const stale = new InternalTokenSigner({ issuer: 'gateway', key: await loadSigningKey(t.internalKeyFiles.privateKeyFile), clock: past });
    expect((await callSubgraph('iam', ORGANIZATIONS, await mint('iam', stale))).status).toBe(401);
  });

  it('refuses an internal JWT minted for another subgraph', async () => {
    expect((await callSubgraph('iam', ORGANIZATIONS, await mint('billing'))).status).toBe(401);
    expect((await callSubgraph('billing', '{ _service { sdl } }', await mint('iam'))).status).toBe(401);
  });

  it('refuses an internal JWT from an issuer it does not accept', async () => {
    const stranger = new InternalTokenSigner({ issuer: 'somebody-else', key: await loadSigningKey(t.internalKeyFiles.privateKeyFile) });
    expect((await callSubgraph('iam', ORGANIZATIONS, await mint('iam', stranger))).status).toBe(401);
  });

  it('serves a valid internal JWT minted for it', async () => {
    const res = await callSubgraph('iam', ORGANIZATIONS, await mint('iam'));
    expect(res).toEqual({ status: 200, body: { data: { organizations: { edges: [] } } } });
  });

  it('enforces @scopes itself: a valid internal JWT for a principal holding no grant is refused', async () => {
    const nobody: Principal = { type: 'user', subject: 'nobody-1', platformRoles: [], grants: [] };
    const token = await signer.mint({ audience: 'iam', principal: nobody, correlationId: 'direct-call-0002' });
    const res = await callSubgraph('iam', ORGANIZATIONS, token);
    expect(res.status).toBe(200);
    expect(res.body.data).toBeNull();
    expect(res.body.errors[0].extensions.code).toBe('AUTH_FORBIDDEN');
  });

  it('answers /healthz and /readyz without a token', async () => {
    for (const url of Object.values(t.platform.subgraphUrls)) {
      const base = url.replace(/\/graphql$/, '');
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
    }
  });

  it('serves over _service exactly the SDL that was composed, for every subgraph', async () => {
    const sources = await readSupergraphConfig(SUPERGRAPH_CONFIG);
    expect(sources.map((source) => source.name).sort()).toEqual(Object.keys(t.platform.subgraphUrls).sort());
    for (const source of sources) {
      const res = await callSubgraph(source.name, '{ _service { sdl } }', await mint(source.name));
      expect(res.status).toBe(200);
      // What a subgraph built from the composed file would answer, byte for byte.
      const fromFile = await graphql({ schema: buildSubgraphSchema(parse(source.sdl)), source: '{ _service { sdl } }' });
      expect(res.body.data._service.sdl).toBe((fromFile.data as any)._service.sdl);
    }
  });
});

describe('composition', () => {
  it('matches the committed supergraph.graphql', async () => {
    const result = composeSupergraph(await readSupergraphConfig(SUPERGRAPH_CONFIG));
    if (!result.ok) throw new Error(result.errors.join('\n'));
    expect(result.supergraphSdl).toBe(await readFile(SUPERGRAPH_FILE, 'utf8'));
  });

  it('fails on a subgraph that cannot compose', async () => {
    const sources = await readSupergraphConfig(SUPERGRAPH_CONFIG);
    const broken = sources.map((source) =>
      source.name === 'billing' ? { ...source, sdl: source.sdl.replace('account: Account', 'account: Int') } : source,
    );
    broken.push({ ...sources[0]!, name: 'rogue', sdl: 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])\ntype Organization @key(fields: "id") { id: ID! slug: Int! }' });
    const result = composeSupergraph(broken);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.errors.join('\n')).toMatch(/slug/);
  });
});
