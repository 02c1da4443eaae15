import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { parse } from 'graphql';
import { AccessModelPublisher } from '@aifactory/access-model';
import { buildCatalogSnapshot, type ServiceIdentityEntry } from '@aifactory/authz';
import { parseConfig } from '@aifactory/config';
import { loadRegistryData } from '@aifactory/contracts';
import { createLogger } from '@aifactory/logging';
import {
  formatPublicKeyBundle,
  InternalTokenSigner,
  keyIdOf,
  loadSigningKey,
  ServiceTokenIssuer,
  type Principal,
} from '@aifactory/service-auth';
import { captureLogs, deleteEventStreams, tempKeyDir, TEST_NATS_URL, uniqueEventSubjectPrefix, type TempKeys } from '@aifactory/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startSubgraph, subgraphConfigSchema, type RunningSubgraph, type SubgraphContext } from '../src/index.js';

const federation = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])';
const ORG = '00000000-0000-4000-8000-000000000001';

/** billing answers who called it; `guarded` needs a scope no caller here holds. */
const billingTypeDefs = parse(`
  ${federation}
  type Caller { type: String!, subject: String!, issuer: String!, credential: String, onBehalfOf: String, actorChain: [String!], scopes: [String!], correlationId: String! }
  type Query { whoami: Caller!, guarded: String! }
`);
const gpuaasTypeDefs = parse(`
  ${federation}
  type Query { billingSeesMe: String! }
`);

const alice: Principal = {
  type: 'user',
  subject: 'https://idp.test|alice',
  platformRoles: [],
  grants: [{ level: 'organization', id: ORG, role: 'org_admin', org: ORG, dept: null }],
};

async function entry(name: string, privateKeyPem: string, overrides: Partial<ServiceIdentityEntry> = {}): Promise<ServiceIdentityEntry> {
  const publicKey = createPublicKey(createPrivateKey(privateKeyPem));
  return {
    name,
    status: 'active',
    scopes: ['platform:billing:read'],
    audiences: ['billing'],
    keys: [{ kid: await keyIdOf(publicKey), publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string }],
    version: 1,
    updatedAt: new Date().toISOString(),
    ...overrides,
  };
}

async function post(url: string, token: string, query: string, correlationId = 'svc-test-0001'): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-correlation-id': correlationId },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, body: await res.json() };
}

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('service identity between subgraphs', () => {
  const subjectPrefix = uniqueEventSubjectPrefix();
  const logs = captureLogs();
  let keys: TempKeys;
  let nc: NatsConnection;
  let publisher: AccessModelPublisher;
  let billing: RunningSubgraph;
  let gpuaas: RunningSubgraph;
  let gatewaySigner: InternalTokenSigner;
  let gatewayPublicFile: string;
  let tokenfactory: ServiceTokenIssuer;
  let tokenfactoryEntry: ServiceIdentityEntry;

  function config(extra: Record<string, string>) {
    return parseConfig(subgraphConfigSchema, {
      PORT: '0',
      DATABASE_URL: 'postgresql://unused@127.0.0.1:5432/unused',
      INTERNAL_JWT_PUBLIC_KEY_FILES: gatewayPublicFile,
      SHUTDOWN_GRACE_MS: '2000',
      EVENT_SUBJECT_PREFIX: subjectPrefix,
      ...extra,
    });
  }

  beforeAll(async () => {
    keys = await tempKeyDir();
    const gateway = await keys.ed25519('gateway');
    gatewayPublicFile = gateway.publicKeyFile;
    gatewaySigner = new InternalTokenSigner({ issuer: 'gateway', key: await loadSigningKey(gateway.privateKeyFile) });
    const tokenfactoryFiles = await keys.ed25519('tokenfactory');
    const gpuaasFiles = await keys.ed25519('gpuaas');
    tokenfactory = new ServiceTokenIssuer({ service: 'tokenfactory', key: await loadSigningKey(tokenfactoryFiles.privateKeyFile) });

    nc = await connect({ servers: TEST_NATS_URL, name: 'service-identity-test-iam' });
    publisher = await AccessModelPublisher.open({ nc, subjectPrefix, logger: createLogger({ service: 'iam', level: 'silent' }) });
    const registry = loadRegistryData();
    await publisher.putCatalog(
      buildCatalogSnapshot({ scopes: registry.scopes, roles: registry.roles, registryVersions: { scopes: 1, roles: 1 }, publishedAt: new Date().toISOString() }),
    );
    tokenfactoryEntry = await entry('tokenfactory', await readFile(tokenfactoryFiles.privateKeyFile, 'utf8'));
    await publisher.putServiceIdentity(tokenfactoryEntry);
    await publisher.putServiceIdentity(await entry('gpuaas', await readFile(gpuaasFiles.privateKeyFile, 'utf8')));
    // An entry that tries to be the gateway, holding a key the test (the "attacker") has.
    await publisher.putServiceIdentity(await entry('gateway', await readFile(tokenfactoryFiles.privateKeyFile, 'utf8'), { audiences: ['billing', 'gpuaas'] }));

    billing = await startSubgraph<SubgraphContext>(
      {
        name: 'billing',
        typeDefs: billingTypeDefs,
        resolvers: {
          Query: {
            whoami: (_root: unknown, _args: unknown, ctx: SubgraphContext) => ({
              type: ctx.principal.type,
              subject: ctx.principal.subject,
              issuer: ctx.call.issuer,
              credential: ctx.call.credential,
              onBehalfOf: ctx.principal.onBehalfOf ? `${ctx.principal.onBehalfOf.type}:${ctx.principal.onBehalfOf.subject}` : null,
              actorChain: ctx.principal.actorChain ?? null,
              scopes: ctx.principal.scopes ?? null,
              correlationId: ctx.correlationId,
            }),
            guarded: (_root: unknown, _args: unknown, ctx: SubgraphContext) => {
              ctx.access.require('platform:billing:manage', { organizationId: ORG });
              return 'never';
            },
          },
        },
        extendContext: (base) => base,
        ready: async () => undefined,
      },
      config({}),
      createLogger({ service: 'billing', destination: logs.destination }),
    );
    gpuaas = await startSubgraph<SubgraphContext>(
      {
        name: 'gpuaas',
        typeDefs: gpuaasTypeDefs,
        resolvers: {
          Query: {
            // Calls billing for whoever called gpuaas, with gpuaas's own identity.
            billingSeesMe: async (_root: unknown, _args: unknown, ctx: SubgraphContext) => {
              const answer = await ctx.serviceClient!.graphql(
                'billing',
                { query: '{ whoami { type subject issuer onBehalfOf actorChain scopes correlationId } }' },
                { scopes: ['platform:billing:read'], onBehalfOf: ctx.call },
              );
              return JSON.stringify(answer.data);
            },
          },
        },
        extendContext: (base) => base,
        ready: async () => undefined,
      },
      config({ SERVICE_CREDENTIAL_FILE: gpuaasFiles.privateKeyFile, SERVICE_URLS: JSON.stringify({ billing: billing.url }) }),
      createLogger({ service: 'gpuaas', destination: logs.destination }),
    );
    // Both subgraphs read the identities from the bucket before the tests start.
    await until(async () => ((await post(billing.url, await mint(), '{ whoami { subject } }')).status === 200 ? true : undefined));
  });

  afterAll(async () => {
    await gpuaas?.close();
    await billing?.close();
    await nc?.close();
    await keys?.cleanup();
    await deleteEventStreams(subjectPrefix);
  });

  const mint = (audience = 'billing', scopes = ['platform:billing:read']) => tokenfactory.mint({ audience, scopes, correlationId: 'svc-test-0001' });

  it('serves a service token as the service, logs the call and never the token', async () => {
    const token = await mint();
    const { status, body } = await post(billing.url, token, '{ whoami { type subject issuer credential onBehalfOf scopes } }');
    expect(status).toBe(200);
    expect(body.data.whoami).toEqual({
      type: 'service',
      subject: 'tokenfactory',
      issuer: 'tokenfactory',
      credential: 'service_identity',
      onBehalfOf: null,
      scopes: ['platform:billing:read'],
    });
    const line = logs.lines().find((logged) => logged.msg === 'service call' && logged.service === 'billing');
    expect(line).toMatchObject({ correlationId: 'svc-test-0001', serviceCall: { caller: 'tokenfactory', audience: 'billing' } });
    expect(logs.raw().some((raw) => raw.includes(token) || raw.includes(token.split('.')[2]!))).toBe(false);
  });

  it('refuses at gpuaas a token minted for billing', async () => {
    const { status, body } = await post(gpuaas.url, await mint('billing'), '{ billingSeesMe }');
    expect(status).toBe(401);
    expect(body.errors[0].extensions.code).toBe('INTERNAL_AUTH_UNAUTHENTICATED');
    // And one minted for gpuaas, which tokenfactory's identity may not call.
    const forGpuaas = await post(gpuaas.url, await mint('gpuaas', []), '{ billingSeesMe }');
    expect(forGpuaas.body.errors[0].extensions.code).toBe('INTERNAL_AUTH_AUDIENCE_NOT_ALLOWED');
  });

  it('refuses scopes beyond the identity', async () => {
    const { status, body } = await post(billing.url, await mint('billing', ['platform:billing:manage']), '{ whoami { subject } }');
    expect(status).toBe(403);
    expect(body.errors[0].extensions.code).toBe('INTERNAL_AUTH_SCOPE_NOT_ALLOWED');
  });

  it('never takes a service identity named gateway for the gateway', async () => {
    // Signed with the key the `gateway` entry lists, claiming iss gateway: only the gateway's file keys may sign that.
    const asGateway = await new InternalTokenSigner({ issuer: 'gateway', key: await loadSigningKey(`${keys.dir}/tokenfactory.key.pem`) }).mint({
      audience: 'billing',
      principal: { type: 'service', subject: 'gateway', platformRoles: [], grants: [] },
      correlationId: 'svc-test-0001',
    });
    const { status, body } = await post(billing.url, asGateway, '{ whoami { subject } }');
    expect(status).toBe(401);
    expect(body.errors[0].extensions.code).toBe('INTERNAL_AUTH_UNAUTHENTICATED');
  });

  it('carries the caller through a service call: the party acted for, the act chain and the correlation id', async () => {
    const token = await gatewaySigner.mint({ audience: 'gpuaas', principal: alice, correlationId: 'svc-chain-0001' });
    const { status, body } = await post(gpuaas.url, token, '{ billingSeesMe }', 'svc-chain-0001');
    expect(status).toBe(200);
    expect(JSON.parse(body.data.billingSeesMe).whoami).toEqual({
      type: 'service',
      subject: 'gpuaas',
      issuer: 'gpuaas',
      onBehalfOf: `user:${alice.subject}`,
      actorChain: ['gpuaas'],
      scopes: ['platform:billing:read'],
      correlationId: 'svc-chain-0001',
    });
    const line = logs.lines().find((logged) => logged.msg === 'service call' && logged.correlationId === 'svc-chain-0001');
    expect(line).toMatchObject({
      service: 'billing',
      serviceCall: { caller: 'gpuaas', audience: 'billing', onBehalfOf: { type: 'user', subject: alice.subject }, actorChain: ['gpuaas'] },
    });
  });

  it('audits a service deny with the party it acted for and the act chain', async () => {
    const forAlice = await tokenfactory.mint({
      audience: 'billing',
      scopes: ['platform:billing:read'],
      correlationId: 'svc-deny-0001',
      onBehalfOf: { party: { type: 'user', subject: alice.subject }, priorActors: { sub: 'gpuaas' } },
    });
    const { body } = await post(billing.url, forAlice, '{ guarded }', 'svc-deny-0001');
    expect(body.errors[0].extensions.code).toBe('AUTH_FORBIDDEN');
    const deny = await until(async () => logs.lines().find((logged) => logged.msg === 'access denied' && logged.correlationId === 'svc-deny-0001'));
    expect(deny.deny).toMatchObject({
      principal: { type: 'service', id: 'tokenfactory' },
      onBehalfOf: { type: 'user', id: alice.subject },
      actorChain: ['tokenfactory', 'gpuaas'],
      scope: 'platform:billing:manage',
    });
  });

  it('refuses a disabled identity as soon as its entry arrives, and serves it again once enabled', async () => {
    const token = await mint();
    expect((await post(billing.url, token, '{ whoami { subject } }')).status).toBe(200);
    const disabledAt = Date.now();
    await publisher.putServiceIdentity({ ...tokenfactoryEntry, status: 'disabled', version: 2, updatedAt: new Date().toISOString() });
    const refused = await until(async () => {
      const answer = await post(billing.url, token, '{ whoami { subject } }');
      return answer.status === 200 ? undefined : answer;
    });
    expect(Date.now() - disabledAt).toBeLessThan(1_000);
    expect(refused.status).toBe(401);
    expect(refused.body.errors[0].extensions.code).toBe('INTERNAL_AUTH_SERVICE_DISABLED');
    await publisher.putServiceIdentity({ ...tokenfactoryEntry, version: 3, updatedAt: new Date().toISOString() });
    await until(async () => ((await post(billing.url, token, '{ whoami { subject } }')).status === 200 ? true : undefined));
  });

  it('accepts a newly published gateway key without a restart', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const rotated = new InternalTokenSigner({ issuer: 'gateway', key: { kid: await keyIdOf(publicKey), privateKey } });
    const token = await rotated.mint({ audience: 'billing', principal: alice, correlationId: 'svc-rotate-0001' });
    expect((await post(billing.url, token, '{ whoami { subject } }')).status).toBe(401);
    const bundle = `${await readFile(gatewayPublicFile, 'utf8')}${formatPublicKeyBundle([publicKey])}`;
    await writeFile(`${gatewayPublicFile}.tmp`, bundle);
    await rename(`${gatewayPublicFile}.tmp`, gatewayPublicFile);
    // The unknown kid re-reads the files (at most once a second).
    const accepted = await until(async () => {
      const answer = await post(billing.url, token, '{ whoami { subject } }');
      return answer.status === 200 ? answer : undefined;
    });
    expect(accepted.body.data.whoami.subject).toBe(alice.subject);
  });
});
