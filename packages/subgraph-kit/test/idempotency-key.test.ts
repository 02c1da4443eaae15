import { randomUUID } from 'node:crypto';
import { parse } from 'graphql';
import { AccessModelPublisher } from '@aifactory/access-model';
import { buildCatalogSnapshot } from '@aifactory/authz';
import { parseConfig } from '@aifactory/config';
import { loadRegistryData } from '@aifactory/contracts';
import { AppError } from '@aifactory/errors';
import { validateIdempotencyKey } from '@aifactory/http';
import { createLogger } from '@aifactory/logging';
import { InternalTokenSigner, loadSigningKey } from '@aifactory/service-auth';
import { deleteEventStreams, tempKeyDir, TEST_NATS_URL, uniqueEventSubjectPrefix, type TempKeys } from '@aifactory/testing';
import { connect } from '@nats-io/transport-node';
import { startSubgraph, subgraphConfigSchema, type RunningSubgraph, type SubgraphContext } from '../src/index.js';

const typeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
  type Query { ping: String! }
  type Mutation { keyed: String }
`);

/** Every subgraph audits its denies as `<name>.access.deny`, so it must carry a registered publisher's name. */
const NAME = 'billing';

describe('validateIdempotencyKey', () => {
  it('takes 1 to 255 printable ASCII characters, and no header as no key', () => {
    expect(validateIdempotencyKey(undefined)).toBeUndefined();
    expect(validateIdempotencyKey('a')).toBe('a');
    expect(validateIdempotencyKey(' ~'.repeat(127) + '!')).toHaveLength(255);
  });

  it('refuses an empty, overlong, non-ASCII or repeated key like the gateway does', () => {
    const codeOf = (raw: string | string[]) => {
      try {
        validateIdempotencyKey(raw);
        return 'accepted';
      } catch (error) {
        return error instanceof AppError ? error.code : 'not an AppError';
      }
    };
    for (const raw of ['', 'k'.repeat(256), 'clé', 'tab\there', ['a', 'b']]) expect(codeOf(raw)).toBe('IDEMPOTENCY_KEY_INVALID');
  });
});

describe('a subgraph request’s Idempotency-Key', () => {
  let keys: TempKeys;
  let subgraph: RunningSubgraph;
  let token: string;
  const eventSubjectPrefix = uniqueEventSubjectPrefix();

  beforeAll(async () => {
    keys = await tempKeyDir();
    const files = await keys.ed25519('internal');
    const nc = await connect({ servers: TEST_NATS_URL, name: 'idempotency-key-test-iam' });
    try {
      const publisher = await AccessModelPublisher.open({ nc, subjectPrefix: eventSubjectPrefix, logger: createLogger({ service: 'iam', level: 'silent' }) });
      const registry = loadRegistryData();
      await publisher.putCatalog(
        buildCatalogSnapshot({ scopes: registry.scopes, roles: registry.roles, registryVersions: { scopes: 1, roles: 1 }, publishedAt: new Date().toISOString() }),
      );
    } finally {
      await nc.close();
    }
    const config = parseConfig(subgraphConfigSchema, {
      PORT: '0',
      DATABASE_URL: 'postgresql://unused@127.0.0.1:5432/unused',
      INTERNAL_JWT_PUBLIC_KEY_FILES: files.publicKeyFile,
      SHUTDOWN_GRACE_MS: '2000',
      EVENT_SUBJECT_PREFIX: eventSubjectPrefix,
    });
    subgraph = await startSubgraph<SubgraphContext>(
      {
        name: NAME,
        typeDefs,
        resolvers: {
          Query: { ping: () => 'pong' },
          Mutation: { keyed: (_root: unknown, _args: unknown, ctx: SubgraphContext) => ctx.idempotencyKey ?? null },
        },
        extendContext: (base) => base,
        ready: async () => undefined,
      },
      config,
      createLogger({ service: NAME, level: 'silent' }),
    );
    const signer = new InternalTokenSigner({ issuer: 'gateway', key: await loadSigningKey(files.privateKeyFile) });
    token = await signer.mint({ audience: NAME, correlationId: 'idem-0001', principal: { type: 'user', subject: 'alice', platformRoles: [], grants: [] } });
  });
  afterAll(async () => {
    await subgraph?.close();
    await keys?.cleanup();
    await deleteEventStreams(eventSubjectPrefix);
  });

  const post = async (headers: Record<string, string>, authorization = `Bearer ${token}`) => {
    const res = await fetch(`${subgraph.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization, ...headers },
      body: JSON.stringify({ query: 'mutation { keyed }' }),
    });
    return { status: res.status, body: (await res.json()) as { data?: { keyed: string | null }; errors?: Array<{ extensions: { code: string } }> } };
  };

  it('is in the context when the gateway forwarded one', async () => {
    const key = randomUUID();
    expect(await post({ 'idempotency-key': key })).toEqual({ status: 200, body: { data: { keyed: key } } });
  });

  it('is absent when the call carries none', async () => {
    expect(await post({})).toEqual({ status: 200, body: { data: { keyed: null } } });
  });

  it('refuses a malformed one before any resolver runs', async () => {
    const { status, body } = await post({ 'idempotency-key': 'k'.repeat(256) });
    expect(status).toBe(400);
    expect(body.errors?.[0]?.extensions.code).toBe('IDEMPOTENCY_KEY_INVALID');
    expect(body.data).toBeUndefined();
  });

  it('is never read from a call that is not authenticated', async () => {
    const { status, body } = await post({ 'idempotency-key': 'k'.repeat(256) }, 'Bearer not-a-token');
    expect(status).toBe(401);
    expect(body.errors?.[0]?.extensions.code).toBe('INTERNAL_AUTH_UNAUTHENTICATED');
  });
});
