import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { AccessModelReader, deleteAccessBucket } from '@aifactory/access-model';
import type { ApiKeyEntry, PrincipalEntry } from '@aifactory/authz';
import { systemClock } from '@aifactory/clock';
import { parseConfig } from '@aifactory/config';
import { createLogger } from '@aifactory/logging';
import {
  InternalTokenSigner,
  loadSigningKey,
  newPepperValue,
  parseApiKey,
  PepperRing,
  readPepperFile,
  writePepperFile,
  type Principal,
} from '@aifactory/service-auth';
import type { StartedService } from '@aifactory/subgraph-kit';
import {
  captureLogs,
  createTestDatabase,
  deleteEventStreams,
  tempKeyDir,
  TEST_NATS_URL,
  uniqueEventSubjectPrefix,
  type CapturedLogs,
  type TempKeys,
  type TestDatabase,
} from '@aifactory/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { iamConfigSchema } from '../src/config.js';
import { startIamSubgraph } from '../src/server.js';

const ISSUER = 'https://idp.test.localhost';
const gateway: Principal = { type: 'service', subject: 'gateway', platformRoles: [], grants: [] };
const DAY_MS = 86_400_000;

type GraphQLResult = { data?: any; errors?: Array<{ message: string; extensions: { code: string; details?: any } }> };

let db: TestDatabase;
let admin: pg.Client;
let keys: TempKeys;
let pepperFile: string;
let iam: StartedService;
let logs: CapturedLogs;
let signer: InternalTokenSigner;
/** Another platform service's signer, trusted by iam (INTERNAL_JWT_ISSUERS) but not the gateway. */
let billingSigner: InternalTokenSigner;
let nc: NatsConnection;
let reader: AccessModelReader;
const subjectPrefix = uniqueEventSubjectPrefix();

beforeAll(async () => {
  db = await createTestDatabase({ subgraphs: ['iam'] });
  admin = await db.admin();
  keys = await tempKeyDir();
  const internal = await keys.ed25519('internal');
  pepperFile = await keys.pepper('api-keys');
  signer = new InternalTokenSigner({ issuer: 'gateway', key: await loadSigningKey(internal.privateKeyFile) });
  billingSigner = new InternalTokenSigner({ issuer: 'billing', key: await loadSigningKey(internal.privateKeyFile) });
  const config = parseConfig(iamConfigSchema, {
    PORT: '0',
    LOG_LEVEL: 'debug',
    DATABASE_URL: db.appUrl('iam'),
    DB_POOL_SIZE: '4',
    INTERNAL_JWT_PUBLIC_KEY_FILES: internal.publicKeyFile,
    INTERNAL_JWT_ISSUERS: 'gateway,billing',
    SHUTDOWN_GRACE_MS: '1000',
    EVENT_SUBJECT_PREFIX: subjectPrefix,
    NATS_URL: TEST_NATS_URL,
    ACCESS_HEARTBEAT_MS: '500',
    API_KEY_PEPPER_FILE: pepperFile,
    API_KEY_ENVIRONMENT: 'test',
  });
  logs = captureLogs();
  iam = await startIamSubgraph(config, createLogger({ service: 'iam', level: 'debug', destination: logs.destination }));
  nc = await connect({ servers: TEST_NATS_URL, name: 'iam-api-keys-test' });
  reader = new AccessModelReader({ nc, subjectPrefix, clock: systemClock, logger: createLogger({ service: 'reader', level: 'silent' }), maxAgeMs: 10_000 });
  await reader.start();
  await reader.whenReady();
}, 120_000);

afterAll(async () => {
  await reader?.stop();
  await iam?.close();
  await admin?.end();
  await db?.drop();
  await keys?.cleanup();
  if (nc) {
    await deleteAccessBucket(nc, subjectPrefix);
    await nc.close();
  }
  await deleteEventStreams(subjectPrefix);
});

// ------------------------------------------------------------------ calls

const bearer = async (principal: Principal, as: InternalTokenSigner = signer) =>
  `Bearer ${await as.mint({ audience: 'iam', principal, correlationId: `c-${randomUUID()}` })}`;

async function graphql(principal: Principal, query: string, variables: Record<string, unknown> = {}): Promise<GraphQLResult> {
  const res = await fetch(`${iam.url}/graphql`, {
    method: 'POST',
    headers: { authorization: await bearer(principal), 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as GraphQLResult;
}

/** The data of a call that must succeed. */
async function ok(principal: Principal, query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const result = await graphql(principal, query, variables);
  expect(result.errors).toBeUndefined();
  return result.data;
}

async function errorCode(principal: Principal, query: string, variables: Record<string, unknown> = {}): Promise<string | undefined> {
  const result = await graphql(principal, query, variables);
  return result.errors?.[0]?.extensions.code;
}

async function postInternal(path: string, body: unknown, principal: Principal = gateway, as: InternalTokenSigner = signer): Promise<Response> {
  return fetch(`${iam.url}${path}`, {
    method: 'POST',
    headers: { authorization: await bearer(principal, as), 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function signIn(email: string): Promise<PrincipalEntry> {
  const res = await postInternal('/api/internal/sign-in', { issuer: ISSUER, subject: `sub|${email}`, email, emailVerified: true, name: 'Someone' });
  expect(res.status).toBe(200);
  return ((await res.json()) as { principal: PrincipalEntry }).principal;
}

function principalOf(entry: PrincipalEntry, platformRoles: Principal['platformRoles'] = entry.platformRoles): Principal {
  return {
    type: 'user',
    subject: entry.userId,
    platformRoles,
    grants: entry.grants.map((grant) => ({ level: grant.level, id: grant.id, role: grant.role, org: grant.organizationId, dept: grant.departmentId })),
  };
}

async function until<T>(read: () => T | undefined | Promise<T | undefined>, accept: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined && accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`not seen within ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await sleep(2);
  }
}

// --------------------------------------------------------------- fixtures

const KEY_FIELDS = `id prefix fingerprint scopes labels { key value } status expiresAt graceUntil rotatedToKeyId rotatedFromKeyId
  revokedAt revokeReason createdBy { id } creatorLeftOrganization lastUsedAt registryVersion createdAt serviceAccount { id name }`;

const CREATE_KEY = `mutation($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { ${KEY_FIELDS} } } }`;

/** An organization with a department and a project, its founder (org_admin) and a platform admin (the founder with the role). */
async function tenant() {
  const email = `founder-${randomUUID()}@example.test`;
  const founder = await signIn(email);
  const platformAdmin = principalOf(founder, ['platform_admin']);
  const { createOrganization: organization } = await ok(
    platformAdmin,
    `mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { id } }`,
    { input: { slug: `org-${randomUUID().slice(0, 8)}`, name: 'Org' } },
  );
  const { createDepartment: department } = await ok(
    platformAdmin,
    `mutation($org: ID!) { createDepartment(organizationId: $org, slug: "dept", name: "Dept") { id } }`,
    { org: organization.id },
  );
  const { createProject: project } = await ok(
    platformAdmin,
    `mutation($dept: ID!) { createProject(departmentId: $dept, slug: "proj", name: "Proj") { id } }`,
    { dept: department.id },
  );
  const orgAdmin = principalOf(await signIn(email));
  return { organizationId: organization.id as string, departmentId: department.id as string, projectId: project.id as string, orgAdmin, platformAdmin, founder };
}

async function serviceAccount(principal: Principal, projectId: string, name = `sa-${randomUUID().slice(0, 8)}`): Promise<{ id: string; name: string }> {
  const data = await ok(
    principal,
    `mutation($input: CreateServiceAccountInput!) { createServiceAccount(input: $input) { id name description labels { key value } status project { id } createdBy { id } } }`,
    { input: { projectId, name, description: 'CI runner', labels: [{ key: 'team', value: 'ml' }] } },
  );
  return data.createServiceAccount;
}

async function createKey(principal: Principal, input: Record<string, unknown>): Promise<{ secret: string; apiKey: any }> {
  return (await ok(principal, CREATE_KEY, { input })).createApiKey;
}

/** Every 16-character piece of the key's secret part: none may appear anywhere once the key is created. */
function secretPieces(raw: string): string[] {
  const secret = parseApiKey(raw)!.secret;
  return Array.from({ length: secret.length - 15 }, (_, index) => secret.slice(index, index + 16));
}

/** Every row of every table of iam's schema, as text. */
async function dumpIamSchema(): Promise<string> {
  const { rows: tables } = await admin.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'iam'`);
  const parts: string[] = [];
  for (const { table_name: table } of tables) {
    const { rows } = await admin.query<{ row: string }>(`SELECT row_to_json(t)::text AS row FROM iam."${table}" t`);
    parts.push(...rows.map((row) => row.row));
  }
  return parts.join('\n');
}

// ------------------------------------------------------------------ tests

describe('creating a service account and an API key', () => {
  it('returns the key text once and stores only an HMAC of its secret, nowhere else', async () => {
    const t = await tenant();
    const account = await serviceAccount(t.orgAdmin, t.projectId, 'ci-runner');
    expect(account).toMatchObject({ name: 'ci-runner' });

    const { secret, apiKey } = await createKey(t.orgAdmin, {
      serviceAccountId: account.id,
      scopes: ['gpuaas:allocation:read', 'gpuaas:allocation:create', 'gpuaas:allocation:read'],
      labels: [{ key: 'env', value: 'staging' }],
    });

    const parsed = parseApiKey(secret);
    expect(parsed).toMatchObject({ environment: 'test', keyId: apiKey.id });
    expect(apiKey).toMatchObject({
      prefix: `aif_test_${apiKey.id}`,
      scopes: ['gpuaas:allocation:create', 'gpuaas:allocation:read'],
      labels: [{ key: 'env', value: 'staging' }],
      status: 'ACTIVE',
      createdBy: { id: t.founder.userId },
      creatorLeftOrganization: false,
      lastUsedAt: null,
      serviceAccount: { id: account.id },
    });
    const pepper = await PepperRing.load(pepperFile);
    const { rows } = await admin.query('SELECT hash, pepper_version, registry_version FROM iam.api_keys WHERE key_id = $1', [apiKey.id]);
    expect(rows[0]).toMatchObject({ hash: pepper.hash(parsed!.secret, 1), pepper_version: 1, registry_version: apiKey.registryVersion });

    // The listing never shows the text again, and no row, event, read-model entry or log line holds any piece of it.
    const listed = await ok(t.orgAdmin, `query($id: ID!) { apiKey(id: $id) { ${KEY_FIELDS} } }`, { id: apiKey.id });
    const entry = await until(() => reader.apiKey(apiKey.id), () => true);
    const everywhere = [JSON.stringify(listed), await dumpIamSchema(), JSON.stringify(entry), ...logs.raw()].join('\n');
    for (const piece of secretPieces(secret)) expect(everywhere).not.toContain(piece);
    const { rows: events } = await admin.query(`SELECT type, payload FROM iam.outbox_events WHERE aggregate_id = $1`, [apiKey.id]);
    expect(events.map((event) => event.type)).toEqual(['platform.iam.api_key.created']);
    expect(Object.keys(events[0].payload)).not.toEqual(expect.arrayContaining(['hash']));
  });

  it('announces and audits a service account, and refuses labels that are not a set of valid key=value pairs', async () => {
    const t = await tenant();
    const account = await serviceAccount(t.orgAdmin, t.projectId);
    const { rows } = await admin.query(`SELECT type FROM iam.outbox_events WHERE aggregate_id = $1 OR payload->'details'->>'name' = $2 ORDER BY type`, [
      account.id,
      account.name,
    ]);
    expect(rows.map((row) => row.type)).toEqual(['platform.audit.iam.service_account.create', 'platform.iam.service_account.created']);
    expect(await errorCode(t.orgAdmin, `mutation($p: ID!) { createServiceAccount(input: { projectId: $p, name: "${account.name}" }) { id } }`, { p: t.projectId })).toBe(
      'IAM_DUPLICATE',
    );

    const create = `mutation($input: CreateServiceAccountInput!) { createServiceAccount(input: $input) { id } }`;
    const twice = [{ key: 'team', value: 'a' }, { key: 'team', value: 'b' }];
    expect(await errorCode(t.orgAdmin, create, { input: { projectId: t.projectId, name: 'twice', labels: twice } })).toBe('BAD_REQUEST_INVALID_INPUT');
    expect(await errorCode(t.orgAdmin, create, { input: { projectId: t.projectId, name: 'badkey', labels: [{ key: 'Team!', value: 'a' }] } })).toBe(
      'BAD_REQUEST_INVALID_INPUT',
    );
    const labels = [{ key: 'a', value: 'x'.repeat(257) }];
    expect(await errorCode(t.orgAdmin, CREATE_KEY, { input: { serviceAccountId: account.id, scopes: ['gpuaas:node:read'], labels } })).toBe(
      'BAD_REQUEST_INVALID_INPUT',
    );
  });

  it('is audited, and the key entry reaches the read model with its hash', async () => {
    const t = await tenant();
    const account = await serviceAccount(t.orgAdmin, t.projectId);
    const { secret, apiKey } = await createKey(t.orgAdmin, { serviceAccountId: account.id, scopes: ['gpuaas:node:read'] });

    const entry = await until(() => reader.apiKey(apiKey.id), () => true);
    expect(entry).toMatchObject({
      keyId: apiKey.id,
      serviceAccountId: account.id,
      organizationId: t.organizationId,
      departmentId: t.departmentId,
      projectId: t.projectId,
      scopes: ['gpuaas:node:read'],
      status: 'active',
      graceUntil: null,
      pepperVersion: 1,
      version: 1,
    });
    expect((await PepperRing.load(pepperFile)).verify(parseApiKey(secret)!.secret, entry.pepperVersion, entry.hash)).toBe(true);
    const { rows } = await admin.query(`SELECT type, payload FROM iam.outbox_events WHERE type LIKE 'platform.audit.iam.%' AND payload->'details'->>'keyId' = $1`, [apiKey.id]);
    expect(rows.map((row) => row.type)).toEqual(['platform.audit.iam.api_key.create']);
    expect(rows[0].payload).toMatchObject({ scope: 'platform:api_key:manage', principal: { type: 'user', id: t.founder.userId } });
  });

  it('lists service accounts and keys of a project a page at a time, oldest first', async () => {
    const t = await tenant();
    const first = await serviceAccount(t.orgAdmin, t.projectId, 'aaa');
    const second = await serviceAccount(t.orgAdmin, t.projectId, 'bbb');
    const k1 = (await createKey(t.orgAdmin, { serviceAccountId: first.id, scopes: ['gpuaas:node:read'] })).apiKey;
    const k2 = (await createKey(t.orgAdmin, { serviceAccountId: first.id, scopes: ['gpuaas:node:read'] })).apiKey;
    const k3 = (await createKey(t.orgAdmin, { serviceAccountId: second.id, scopes: ['gpuaas:node:read'] })).apiKey;

    const page = `query($id: ID!, $after: String) { project(id: $id) {
      serviceAccounts(first: 1, after: $after) { edges { cursor node { id apiKeys { edges { node { id } } } } } pageInfo { hasNextPage endCursor } }
      apiKeys(first: 2) { edges { node { id serviceAccount { id } } } pageInfo { hasNextPage endCursor } } } }`;
    const one = (await ok(t.orgAdmin, page, { id: t.projectId })).project;
    expect(one.serviceAccounts.edges.map((edge: any) => edge.node.id)).toEqual([first.id]);
    expect(one.serviceAccounts.edges[0].node.apiKeys.edges.map((edge: any) => edge.node.id)).toEqual([k1.id, k2.id]);
    expect(one.serviceAccounts.pageInfo.hasNextPage).toBe(true);
    expect(one.apiKeys.edges.map((edge: any) => edge.node.id)).toEqual([k1.id, k2.id]);
    expect(one.apiKeys.pageInfo.hasNextPage).toBe(true);

    const two = (await ok(t.orgAdmin, page, { id: t.projectId, after: one.serviceAccounts.pageInfo.endCursor })).project;
    expect(two.serviceAccounts.edges.map((edge: any) => edge.node.id)).toEqual([second.id]);
    expect(two.serviceAccounts.edges[0].node.apiKeys.edges.map((edge: any) => edge.node.id)).toEqual([k3.id]);
    expect(two.serviceAccounts.pageInfo.hasNextPage).toBe(false);

    // A member of another organization sees none of it.
    const stranger = { ...t.orgAdmin, subject: randomUUID(), grants: [{ level: 'organization' as const, id: randomUUID(), role: 'org_admin' }] };
    expect((await ok(stranger, `query($id: ID!) { apiKey(id: $id) { id } }`, { id: k1.id })).apiKey).toBeNull();
  });
});

describe('the scopes of a new key', () => {
  it('are refused above what the creator holds on the project, unknown, or retired', async () => {
    const t = await tenant();
    const lead = await signIn(`lead-${randomUUID()}@example.test`);
    await ok(t.orgAdmin, `mutation($u: ID!, $p: ID!) { grantRole(userId: $u, level: PROJECT, nodeId: $p, role: "project_admin") { id } }`, {
      u: lead.userId,
      p: t.projectId,
    });
    const asLead = principalOf(await signIn(lead.email!));
    const account = await serviceAccount(asLead, t.projectId);

    const above = await graphql(asLead, CREATE_KEY, { input: { serviceAccountId: account.id, scopes: ['gpuaas:node:read', 'platform:project:create'] } });
    expect(above.errors?.[0]?.extensions).toMatchObject({ code: 'IAM_API_KEY_SCOPE_NOT_HELD' });
    expect(above.errors?.[0]?.message).toContain('platform:project:create');
    expect(await errorCode(asLead, CREATE_KEY, { input: { serviceAccountId: account.id, scopes: ['gpuaas:nothing:here'] } })).toBe('IAM_SCOPE_UNKNOWN');
    expect((await createKey(asLead, { serviceAccountId: account.id, scopes: ['gpuaas:allocation:create'] })).apiKey.scopes).toEqual(['gpuaas:allocation:create']);

    // A scope the platform admin registers and then retires is refused by name once the catalogue says so.
    const legacy = `gpuaas:legacy_${randomUUID().slice(0, 6)}:read`;
    await ok(t.platformAdmin, `mutation($input: RegisterScopeInput!) { registerScope(input: $input) { id } }`, {
      input: { id: legacy, product: 'gpuaas', description: 'Old.', riskClass: 'LOW' },
    });
    await ok(t.platformAdmin, `mutation($s: ID!) { setScopeLifecycle(scope: $s, lifecycle: RETIRED) { id } }`, { s: legacy });
    await until(() => reader.catalog()?.scopes[legacy]?.lifecycle, (lifecycle) => lifecycle === 'retired');
    const retired = await until(
      () => errorCode(t.platformAdmin, CREATE_KEY, { input: { serviceAccountId: account.id, scopes: [legacy] } }),
      (code) => code !== 'IAM_SCOPE_UNKNOWN',
    );
    expect(retired).toBe('AUTH_SCOPE_RETIRED');
  });

  it('need platform:api_key:manage on the project', async () => {
    const t = await tenant();
    const account = await serviceAccount(t.orgAdmin, t.projectId);
    const other = await tenant();
    expect(await errorCode(other.orgAdmin, CREATE_KEY, { input: { serviceAccountId: account.id, scopes: ['gpuaas:node:read'] } })).toBe('AUTH_FORBIDDEN');
  });
});

describe('the expiry of a new key', () => {
  it('defaults to the policy default, is bounded by the maximum, and is never absent unless a platform admin asks where policy allows', async () => {
    const t = await tenant();
    const account = await serviceAccount(t.orgAdmin, t.projectId);
    const input = { serviceAccountId: account.id, scopes: ['gpuaas:node:read'] };

    const before = Date.now();
    const byDefault = (await createKey(t.orgAdmin, input)).apiKey;
    const expires = new Date(byDefault.expiresAt).getTime();
    expect(expires).toBeGreaterThanOrEqual(before + 90 * DAY_MS - 1_000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 90 * DAY_MS);

    const inTenDays = new Date(Date.now() + 10 * DAY_MS).toISOString();
    expect((await createKey(t.orgAdmin, { ...input, expiresAt: inTenDays })).apiKey.expiresAt).toBe(inTenDays);
    const tooLate = new Date(Date.now() + 366 * DAY_MS).toISOString();
    expect(await errorCode(t.orgAdmin, CREATE_KEY, { input: { ...input, expiresAt: tooLate } })).toBe('IAM_API_KEY_EXPIRY_INVALID');
    expect(await errorCode(t.orgAdmin, CREATE_KEY, { input: { ...input, expiresAt: new Date(Date.now() - 1_000).toISOString() } })).toBe(
      'IAM_API_KEY_EXPIRY_INVALID',
    );
    expect(await errorCode(t.orgAdmin, CREATE_KEY, { input: { ...input, neverExpires: true } })).toBe('IAM_API_KEY_EXPIRY_INVALID');
    expect(await errorCode(t.platformAdmin, CREATE_KEY, { input: { ...input, neverExpires: true } })).toBe('IAM_API_KEY_EXPIRY_INVALID');

    await ok(
      t.platformAdmin,
      `mutation($p: ID!) { setPolicyValue(level: PROJECT, targetId: $p, key: "platform.api_keys.allow_no_expiry", value: true) { key } }`,
      { p: t.projectId },
    );
    await until(() => reader.policy(t.organizationId)?.layers.projects[t.projectId]?.values['platform.api_keys.allow_no_expiry'], (value) => value === true);
    expect(await errorCode(t.orgAdmin, CREATE_KEY, { input: { ...input, neverExpires: true } })).toBe('IAM_API_KEY_EXPIRY_INVALID');
    const forever = await until(
      () => graphql(t.platformAdmin, CREATE_KEY, { input: { ...input, neverExpires: true } }),
      (result) => result.errors === undefined,
    );
    expect(forever.data.createApiKey.apiKey.expiresAt).toBeNull();
  });
});

describe('revoking a key', () => {
  it('reaches the read model within milliseconds, and revoking again changes nothing', async () => {
    const t = await tenant();
    const account = await serviceAccount(t.orgAdmin, t.projectId);
    const { apiKey } = await createKey(t.orgAdmin, { serviceAccountId: account.id, scopes: ['gpuaas:node:read'] });
    await until(() => reader.apiKey(apiKey.id), () => true);

    const started = Date.now();
    const revoke = `mutation($id: ID!) { revokeApiKey(id: $id, reason: "leaked") { id status revokedAt revokeReason } }`;
    const { revokeApiKey: revoked } = await ok(t.orgAdmin, revoke, { id: apiKey.id });
    const entry = await until(() => reader.apiKey(apiKey.id), (seen: ApiKeyEntry) => seen.status === 'revoked');
    const propagationMs = Date.now() - started;

    expect(revoked).toMatchObject({ id: apiKey.id, status: 'REVOKED', revokeReason: 'leaked' });
    expect(entry.version).toBe(2);
    // The gateway's goal is 1 s for every instance; the read model itself gets it right after the commit.
    expect(propagationMs).toBeLessThan(500);

    const again = (await ok(t.orgAdmin, revoke, { id: apiKey.id })).revokeApiKey;
    expect(again).toEqual(revoked);
    const { rows } = await admin.query(`SELECT type FROM iam.outbox_events WHERE aggregate_id = $1 ORDER BY aggregate_version`, [apiKey.id]);
    expect(rows.map((row) => row.type)).toEqual(['platform.iam.api_key.created', 'platform.iam.api_key.revoked']);
    const { rows: audits } = await admin.query(`SELECT payload FROM iam.outbox_events WHERE type = 'platform.audit.iam.api_key.revoke' AND payload->'details'->>'keyId' = $1`, [
      apiKey.id,
    ]);
    expect(audits.map((row) => row.payload)).toEqual([expect.objectContaining({ scope: 'platform:api_key:manage', details: expect.objectContaining({ reason: 'leaked' }) })]);
    expect(await errorCode(t.orgAdmin, `mutation { rotateApiKey(input: { id: "${apiKey.id}", graceSeconds: 0 }) { secret } }`)).toBe('IAM_API_KEY_NOT_ACTIVE');
  });
});

describe('rotating a key', () => {
  const ROTATE = `mutation($input: RotateApiKeyInput!) { rotateApiKey(input: $input) { secret apiKey { ${KEY_FIELDS} } previous { ${KEY_FIELDS} } } }`;

  it('issues a new key with the same account, scopes and labels, and keeps the old one working through the grace', async () => {
    const t = await tenant();
    const account = await serviceAccount(t.orgAdmin, t.projectId);
    const old = await createKey(t.orgAdmin, { serviceAccountId: account.id, scopes: ['gpuaas:node:read'], labels: [{ key: 'app', value: 'x' }] });

    const before = Date.now();
    const { rotateApiKey: rotated } = await ok(t.orgAdmin, ROTATE, { input: { id: old.apiKey.id, graceSeconds: 3600 } });

    expect(rotated.secret).not.toBe(old.secret);
    expect(parseApiKey(rotated.secret)?.keyId).toBe(rotated.apiKey.id);
    expect(rotated.apiKey).toMatchObject({
      status: 'ACTIVE',
      scopes: ['gpuaas:node:read'],
      labels: [{ key: 'app', value: 'x' }],
      rotatedFromKeyId: old.apiKey.id,
      serviceAccount: { id: account.id },
    });
    expect(rotated.previous).toMatchObject({ id: old.apiKey.id, status: 'ROTATING', rotatedToKeyId: rotated.apiKey.id });
    const graceUntil = new Date(rotated.previous.graceUntil).getTime();
    expect(graceUntil).toBeGreaterThanOrEqual(before + 3_600_000 - 1_000);
    expect(graceUntil).toBeLessThanOrEqual(Date.now() + 3_600_000);

    const previousEntry = await until(() => reader.apiKey(old.apiKey.id), (entry: ApiKeyEntry) => entry.graceUntil !== null);
    expect(previousEntry).toMatchObject({ status: 'active', graceUntil: rotated.previous.graceUntil, version: 2 });
    expect(await until(() => reader.apiKey(rotated.apiKey.id), () => true)).toMatchObject({ status: 'active', graceUntil: null });

    expect(await errorCode(t.orgAdmin, ROTATE, { input: { id: old.apiKey.id, graceSeconds: 60 } })).toBe('IAM_API_KEY_NOT_ACTIVE');
    expect(await errorCode(t.orgAdmin, ROTATE, { input: { id: rotated.apiKey.id, graceSeconds: 7 * 86_400 + 1 } })).toBe('IAM_API_KEY_GRACE_INVALID');
    const { rows } = await admin.query(`SELECT type FROM iam.outbox_events WHERE type = 'platform.audit.iam.api_key.rotate' AND payload->'details'->>'keyId' = $1`, [
      old.apiKey.id,
    ]);
    expect(rows).toHaveLength(1);
  });

  it('lets only one of two concurrent rotations of a key through', async () => {
    const t = await tenant();
    const account = await serviceAccount(t.orgAdmin, t.projectId);
    const old = await createKey(t.orgAdmin, { serviceAccountId: account.id, scopes: ['gpuaas:node:read'] });

    const outcomes = await Promise.all([1, 2].map(() => graphql(t.orgAdmin, ROTATE, { input: { id: old.apiKey.id, graceSeconds: 60 } })));

    expect(outcomes.filter((outcome) => outcome.errors === undefined)).toHaveLength(1);
    expect(outcomes.find((outcome) => outcome.errors !== undefined)?.errors?.[0]?.extensions.code).toBe('IAM_API_KEY_NOT_ACTIVE');
    const { rows } = await admin.query('SELECT count(*)::int AS n FROM iam.api_keys WHERE rotated_from_key_id = $1', [old.apiKey.id]);
    expect(rows[0].n).toBe(1);
  });

  it('with no grace, rotates the old key out at once', async () => {
    const t = await tenant();
    const account = await serviceAccount(t.orgAdmin, t.projectId);
    const old = await createKey(t.orgAdmin, { serviceAccountId: account.id, scopes: ['gpuaas:node:read'] });

    const { rotateApiKey: rotated } = await ok(t.orgAdmin, ROTATE, { input: { id: old.apiKey.id, graceSeconds: 0 } });

    expect(rotated.previous.status).toBe('ROTATED_OUT');
    const entry = await until(() => reader.apiKey(old.apiKey.id), (seen: ApiKeyEntry) => seen.graceUntil !== null);
    expect(new Date(entry.graceUntil!).getTime()).toBeLessThanOrEqual(Date.now());
  });
});

describe('archiving a project', () => {
  it("suspends its keys in the read model and refuses new ones", async () => {
    const t = await tenant();
    const account = await serviceAccount(t.orgAdmin, t.projectId);
    const { apiKey } = await createKey(t.orgAdmin, { serviceAccountId: account.id, scopes: ['gpuaas:node:read'] });
    await until(() => reader.apiKey(apiKey.id), () => true);

    await ok(t.orgAdmin, `mutation($id: ID!) { archiveProject(id: $id) { status } }`, { id: t.projectId });

    const entry = await until(() => reader.apiKey(apiKey.id), (seen: ApiKeyEntry) => seen.status === 'project_archived');
    expect(entry.version).toBe(2);
    expect((await ok(t.orgAdmin, `query($id: ID!) { apiKey(id: $id) { status } }`, { id: apiKey.id })).apiKey.status).toBe('SUSPENDED');
    expect(await errorCode(t.orgAdmin, CREATE_KEY, { input: { serviceAccountId: account.id, scopes: ['gpuaas:node:read'] } })).toBe('IAM_ARCHIVED');
    expect(await errorCode(t.orgAdmin, `mutation($p: ID!) { createServiceAccount(input: { projectId: $p, name: "late" }) { id } }`, { p: t.projectId })).toBe(
      'IAM_ARCHIVED',
    );
  });
});

describe("a key's creator leaving the organization", () => {
  it('flags the key, audited, and the key keeps working', async () => {
    const t = await tenant();
    const dev = await signIn(`dev-${randomUUID()}@example.test`);
    const { grantRole: membership } = await ok(
      t.orgAdmin,
      `mutation($u: ID!, $p: ID!) { grantRole(userId: $u, level: PROJECT, nodeId: $p, role: "project_admin") { id } }`,
      { u: dev.userId, p: t.projectId },
    );
    const asDev = principalOf(await signIn(dev.email!));
    const account = await serviceAccount(asDev, t.projectId);
    const { apiKey } = await createKey(asDev, { serviceAccountId: account.id, scopes: ['gpuaas:node:read'] });
    const kept = (await createKey(t.orgAdmin, { serviceAccountId: account.id, scopes: ['gpuaas:node:read'] })).apiKey;

    await ok(t.orgAdmin, `mutation($id: ID!) { removeMembership(membershipId: $id) { id } }`, { id: membership.id });

    const listed = (await ok(t.orgAdmin, `query($id: ID!) { apiKey(id: $id) { status creatorLeftOrganization createdBy { id } } }`, { id: apiKey.id })).apiKey;
    expect(listed).toEqual({ status: 'ACTIVE', creatorLeftOrganization: true, createdBy: { id: dev.userId } });
    expect((await ok(t.orgAdmin, `query($id: ID!) { apiKey(id: $id) { creatorLeftOrganization } }`, { id: kept.id })).apiKey.creatorLeftOrganization).toBe(false);
    const entry = await until(() => reader.apiKey(apiKey.id), (seen: ApiKeyEntry) => seen.version === 2);
    expect(entry.status).toBe('active');
    const { rows } = await admin.query(`SELECT payload FROM iam.outbox_events WHERE type = 'platform.audit.iam.api_key.flag' AND payload->'details'->>'keyId' = $1`, [
      apiKey.id,
    ]);
    expect(rows).toHaveLength(1);
    expect(rows[0].payload).toMatchObject({ reason: 'creator_left_organization', details: { creatorUserId: dev.userId } });
  });
});

describe('the usage route', () => {
  const USAGE = '/api/internal/api-keys/usage';
  const lastUsed = async (keyId: string) =>
    (await admin.query<{ last_used_at: Date | null }>('SELECT last_used_at FROM iam.api_keys WHERE key_id = $1', [keyId])).rows[0]!.last_used_at;

  it('writes last use at most once a minute per key', async () => {
    const t = await tenant();
    const account = await serviceAccount(t.orgAdmin, t.projectId);
    const { apiKey } = await createKey(t.orgAdmin, { serviceAccountId: account.id, scopes: ['gpuaas:node:read'] });
    const at = new Date(Date.now() - 10 * 60_000);
    const plus = (seconds: number) => new Date(at.getTime() + seconds * 1000).toISOString();

    const first = await postInternal(USAGE, { uses: [{ keyId: apiKey.id, usedAt: plus(0) }, { keyId: apiKey.id, usedAt: plus(-5) }] });
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ updated: 1 });
    expect((await lastUsed(apiKey.id))?.toISOString()).toBe(plus(0));

    expect(await (await postInternal(USAGE, { uses: [{ keyId: apiKey.id, usedAt: plus(30) }] })).json()).toEqual({ updated: 0 });
    expect((await lastUsed(apiKey.id))?.toISOString()).toBe(plus(0));
    expect(await (await postInternal(USAGE, { uses: [{ keyId: apiKey.id, usedAt: plus(61) }] })).json()).toEqual({ updated: 1 });
    expect((await lastUsed(apiKey.id))?.toISOString()).toBe(plus(61));
    expect((await ok(t.orgAdmin, `query($id: ID!) { apiKey(id: $id) { lastUsedAt } }`, { id: apiKey.id })).apiKey.lastUsedAt).toBe(plus(61));
    // Last use is never announced and never changes the key's version.
    expect(reader.apiKey(apiKey.id)?.version ?? 1).toBe(1);
  });

  it('refuses every caller but the gateway, also a service token claiming to be the gateway', async () => {
    const user: Principal = { type: 'user', subject: randomUUID(), platformRoles: ['platform_admin'], grants: [] };
    expect((await postInternal(USAGE, { uses: [] }, user)).status).toBe(403);
    expect((await postInternal(USAGE, { uses: [] }, gateway, billingSigner)).status).toBe(403);
    const someone = { issuer: ISSUER, subject: `sub|${randomUUID()}`, emailVerified: false };
    expect((await postInternal('/api/internal/sign-in', someone, gateway, billingSigner)).status).toBe(403);
    expect((await postInternal(USAGE, { uses: [] })).status).toBe(200);
    const tooMany = Array.from({ length: 501 }, () => ({ keyId: 'abcdefghijklmnopqrst', usedAt: new Date().toISOString() }));
    expect((await postInternal(USAGE, { uses: tooMany })).status).toBe(400);
  });

  it('re-hashes a key only to a newer pepper version it can verify, and republishes its entry; new keys use the newest pepper', async () => {
    const t = await tenant();
    const account = await serviceAccount(t.orgAdmin, t.projectId);
    const { secret, apiKey } = await createKey(t.orgAdmin, { serviceAccountId: account.id, scopes: ['gpuaas:node:read'] });
    await until(() => reader.apiKey(apiKey.id), () => true);
    const file = await readPepperFile(pepperFile);
    const next = Math.max(...Object.keys(file.versions).map(Number)) + 1;
    await writePepperFile(pepperFile, { current: next, versions: { ...file.versions, [String(next)]: newPepperValue() } });
    const pepper = await PepperRing.load(pepperFile);
    const keySecret = parseApiKey(secret)!.secret;
    const usedAt = new Date().toISOString();

    const unknown = await postInternal(USAGE, { uses: [{ keyId: apiKey.id, usedAt, rehash: { pepperVersion: next + 5, hash: 'x'.repeat(43) } }] });
    expect(await unknown.json()).toEqual({ updated: 1 });
    const rehash = await postInternal(USAGE, { uses: [{ keyId: apiKey.id, usedAt, rehash: { pepperVersion: next, hash: pepper.hash(keySecret, next) } }] });
    expect(await rehash.json()).toEqual({ updated: 1 });
    const older = await postInternal(USAGE, { uses: [{ keyId: apiKey.id, usedAt, rehash: { pepperVersion: 1, hash: pepper.hash(keySecret, 1) } }] });
    expect(await older.json()).toEqual({ updated: 0 });

    const { rows } = await admin.query('SELECT pepper_version, hash, version FROM iam.api_keys WHERE key_id = $1', [apiKey.id]);
    expect(rows[0]).toEqual({ pepper_version: next, hash: pepper.hash(keySecret, next), version: 2 });
    const entry = await until(() => reader.apiKey(apiKey.id), (seen: ApiKeyEntry) => seen.pepperVersion === next);
    expect(entry).toMatchObject({ version: 2, hash: pepper.hash(keySecret, next) });

    const fresh = await createKey(t.orgAdmin, { serviceAccountId: account.id, scopes: ['gpuaas:node:read'] });
    const { rows: freshRows } = await admin.query('SELECT pepper_version, hash FROM iam.api_keys WHERE key_id = $1', [fresh.apiKey.id]);
    expect(freshRows[0]).toEqual({ pepper_version: next, hash: pepper.hash(parseApiKey(fresh.secret)!.secret, next) });
  });
});

describe('service identities', () => {
  it('are listed and disabled or enabled by platform admins only, and each change reaches the read model at once', async () => {
    const t = await tenant();
    const list = `{ serviceIdentities(first: 10) { edges { node { name scopes audiences status keys { kid } } } pageInfo { hasNextPage } } }`;
    const { serviceIdentities } = await ok(t.platformAdmin, list);
    expect(serviceIdentities.edges.map((edge: any) => edge.node)).toEqual(
      expect.arrayContaining([
        { name: 'billing', scopes: ['platform:organization:read'], audiences: ['iam'], status: 'ACTIVE', keys: [] },
        { name: 'tokenfactory', scopes: ['platform:billing:read'], audiences: ['billing'], status: 'ACTIVE', keys: [] },
      ]),
    );
    expect(await errorCode(t.orgAdmin, list)).toBe('AUTH_FORBIDDEN');
    expect(await errorCode(t.orgAdmin, `mutation { disableServiceIdentity(name: "tokenfactory", reason: "x") { name } }`)).toBe('AUTH_FORBIDDEN');
    expect(reader.serviceIdentity('tokenfactory')).toMatchObject({ status: 'active' });

    const started = Date.now();
    const disabled = await ok(t.platformAdmin, `mutation { disableServiceIdentity(name: "tokenfactory", reason: "credential leaked") { status disabledReason disabledAt } }`);
    await until(() => reader.serviceIdentity('tokenfactory'), (entry) => entry.status === 'disabled');
    expect(Date.now() - started).toBeLessThan(500);
    expect(disabled.disableServiceIdentity).toMatchObject({ status: 'DISABLED', disabledReason: 'credential leaked' });

    await ok(t.platformAdmin, `mutation { enableServiceIdentity(name: "tokenfactory") { status } }`);
    await until(() => reader.serviceIdentity('tokenfactory'), (entry) => entry.status === 'active');
    const { rows } = await admin.query(
      `SELECT type FROM iam.outbox_events WHERE type LIKE 'platform.audit.iam.service_identity.%' AND correlation_id IS NOT NULL ORDER BY occurred_at`,
    );
    expect(rows.map((row) => row.type)).toEqual(['platform.audit.iam.service_identity.disable', 'platform.audit.iam.service_identity.enable']);
  });
});
