import { randomUUID } from 'node:crypto';
import { deleteAccessBucket } from '@aifactory/access-model';
import type { PrincipalEntry } from '@aifactory/authz';
import { parseConfig } from '@aifactory/config';
import { createLogger } from '@aifactory/logging';
import { InternalTokenSigner, loadSigningKey, type Principal } from '@aifactory/service-auth';
import type { StartedService } from '@aifactory/subgraph-kit';
import { createTestDatabase, deleteEventStreams, tempKeyDir, TEST_NATS_URL, uniqueEventSubjectPrefix, type TempKeys, type TestDatabase } from '@aifactory/testing';
import { connect } from '@nats-io/transport-node';
import { iamConfigSchema } from '../src/config.js';
import { startIamSubgraph } from '../src/server.js';

const ISSUER = 'https://idp.test.localhost';
const gateway: Principal = { type: 'service', subject: 'gateway', platformRoles: [], grants: [] };

describe('the iam subgraph', () => {
  let db: TestDatabase;
  let keys: TempKeys;
  let iam: StartedService;
  let signer: InternalTokenSigner;
  const subjectPrefix = uniqueEventSubjectPrefix();

  beforeAll(async () => {
    db = await createTestDatabase({ subgraphs: ['iam'] });
    keys = await tempKeyDir();
    const internal = await keys.ed25519('internal');
    signer = new InternalTokenSigner({ issuer: 'gateway', key: await loadSigningKey(internal.privateKeyFile) });
    const config = parseConfig(iamConfigSchema, {
      PORT: '0',
      LOG_LEVEL: 'silent',
      DATABASE_URL: db.appUrl('iam'),
      DB_POOL_SIZE: '4',
      INTERNAL_JWT_PUBLIC_KEY_FILES: internal.publicKeyFile,
      SHUTDOWN_GRACE_MS: '1000',
      EVENT_SUBJECT_PREFIX: subjectPrefix,
      NATS_URL: TEST_NATS_URL,
      DEFAULT_BILLING_CURRENCY: 'EUR',
      API_KEY_PEPPER_FILE: await keys.pepper('api-keys'),
    });
    iam = await startIamSubgraph(config, createLogger({ service: 'iam', level: 'silent' }));
  }, 120_000);

  afterAll(async () => {
    await iam?.close();
    await db?.drop();
    await keys?.cleanup();
    const nc = await connect({ servers: TEST_NATS_URL });
    await deleteAccessBucket(nc, subjectPrefix);
    await nc.close();
    await deleteEventStreams(subjectPrefix);
  });

  const bearer = async (principal: Principal) => `Bearer ${await signer.mint({ audience: 'iam', principal, correlationId: `c-${randomUUID()}` })}`;

  const signIn = async (as: Principal, body: unknown) =>
    fetch(`${iam.url}/api/internal/sign-in`, {
      method: 'POST',
      headers: { authorization: await bearer(as), 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  const graphql = async (principal: Principal, query: string, variables: Record<string, unknown> = {}) => {
    const res = await fetch(`${iam.url}/graphql`, {
      method: 'POST',
      headers: { authorization: await bearer(principal), 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
    return (await res.json()) as { data?: any; errors?: Array<{ message: string; extensions: { code: string } }> };
  };

  const principalOf = (entry: PrincipalEntry, platformRoles: Principal['platformRoles'] = entry.platformRoles): Principal => ({
    type: 'user',
    subject: entry.userId,
    platformRoles,
    grants: entry.grants.map((grant) => ({ level: grant.level, id: grant.id, role: grant.role, org: grant.organizationId, dept: grant.departmentId })),
  });

  const newUser = async (email: string): Promise<PrincipalEntry> => {
    const res = await signIn(gateway, { issuer: ISSUER, subject: `sub|${email}`, email, emailVerified: true, name: 'Someone' });
    expect(res.status).toBe(200);
    return ((await res.json()) as { principal: PrincipalEntry }).principal;
  };

  it('signs users in for the gateway only', async () => {
    const refused = await signIn({ type: 'user', subject: 'u', platformRoles: ['platform_admin'], grants: [] }, { issuer: ISSUER, subject: 'x', emailVerified: false });
    expect(refused.status).toBe(403);

    const entry = await newUser(`first-${randomUUID()}@example.test`);
    expect(entry).toMatchObject({ issuer: ISSUER, emailVerified: true, platformRoles: [], grants: [], version: 1 });
  });

  it('serves the hierarchy and its members through GraphQL, and another organization reads as nothing', async () => {
    const founder = await newUser(`founder-${randomUUID()}@example.test`);
    const created = await graphql(
      principalOf(founder, ['platform_admin']),
      `mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { id billingCurrency status } }`,
      { input: { slug: `org-${randomUUID().slice(0, 8)}`, name: 'Org' } },
    );
    expect(created.errors).toBeUndefined();
    const organization = created.data.createOrganization;
    expect(organization).toMatchObject({ billingCurrency: 'EUR', status: 'ACTIVE' });

    const asFounder = principalOf(await newUser(founder.email!));
    const mine = await graphql(
      asFounder,
      `{ me { id email platformRoles } myOrganizations(first: 5) { edges { node { id myRoles members { edges { node { role level user { id } } } } } } pageInfo { hasNextPage endCursor } } }`,
    );
    expect(mine.errors).toBeUndefined();
    expect(mine.data.me).toMatchObject({ id: founder.userId, platformRoles: [] });
    expect(mine.data.myOrganizations.edges).toEqual([
      { node: { id: organization.id, myRoles: ['org_admin'], members: { edges: [{ node: { role: 'org_admin', level: 'ORGANIZATION', user: { id: founder.userId } } }] } } },
    ]);

    const stranger = principalOf(await newUser(`stranger-${randomUUID()}@example.test`));
    const foreign = await graphql(stranger, `query($id: ID!) { organization(id: $id) { id } }`, { id: organization.id });
    // Holding no read scope at all, the directive refuses before any row is read.
    expect(foreign.errors?.[0]?.extensions.code).toBe('AUTH_FORBIDDEN');
    const outsider = { ...stranger, grants: [{ level: 'organization' as const, id: randomUUID(), role: 'viewer' }] };
    const hidden = await graphql(outsider, `query($id: ID!) { organization(id: $id) { id } }`, { id: organization.id });
    expect(hidden.errors).toBeUndefined();
    expect(hidden.data.organization).toBeNull();
  });
});
