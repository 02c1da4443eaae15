import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { AccessModelReader, deleteAccessBucket } from '@aifactory/access-model';
import type { ApiKeyEntry, PrincipalEntry } from '@aifactory/authz';
import { systemClock } from '@aifactory/clock';
import { streamDeclarations } from '@aifactory/contracts';
import { ensureStreams, OutboxRelay } from '@aifactory/events';
import { ServiceMetrics } from '@aifactory/telemetry';
import { deleteEventStreams, TEST_NATS_URL, uniqueEventSubjectPrefix } from '@aifactory/testing';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startAccessReadModel, type RunningAccessReadModel } from '../src/workers/access-read-model.js';
import { foundProject, keyOf, quietLogger, reloadEntry, startIamFixture, uniqueSlug, type IamFixture } from './iam-fixture.js';

let fx: IamFixture;
let nc: NatsConnection;
let relay: OutboxRelay;
let readModel: RunningAccessReadModel;
let reader: AccessModelReader;

beforeAll(async () => {
  fx = await startIamFixture();
  nc = await connect({ servers: TEST_NATS_URL, name: 'iam-access-read-model-test' });
  await ensureStreams(await jetstreamManager(nc), streamDeclarations({ subjectPrefix: fx.subjectPrefix }));
  relay = new OutboxRelay({ pool: fx.database.pool, schema: fx.database.schema, nc, logger: quietLogger('relay'), subjectPrefix: fx.subjectPrefix });
  await relay.start();
  readModel = await startReadModel(fx.subjectPrefix);
  reader = new AccessModelReader({ nc, subjectPrefix: fx.subjectPrefix, clock: systemClock, logger: quietLogger('reader'), maxAgeMs: 5_000 });
  await reader.start();
  await reader.whenReady();
}, 120_000);

function startReadModel(subjectPrefix: string): Promise<RunningAccessReadModel> {
  return startAccessReadModel({
    nc,
    subjectPrefix,
    logger: quietLogger('access-read-model'),
    metrics: new ServiceMetrics('iam'),
    clock: systemClock,
    heartbeatMs: 200,
    pool: fx.database.pool,
    schema: fx.database.schema,
    users: fx.services.accessStore,
    apiKeys: fx.services.apiKeyStore,
    serviceIdentities: fx.services.serviceIdentityStore,
    catalog: () => fx.services.registries.catalogSnapshot(),
    policies: { all: () => fx.services.policy.policySnapshots(), one: (organizationId) => fx.services.policy.policySnapshot(organizationId) },
  });
}

afterAll(async () => {
  await reader?.stop();
  await readModel?.stop();
  await relay?.stop();
  await fx?.close();
  if (nc) {
    await deleteAccessBucket(nc, fx.subjectPrefix);
    await nc.close();
  }
  await deleteEventStreams(fx.subjectPrefix);
});

async function until<T>(read: () => T | undefined, accept: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    if (value !== undefined && accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`not seen within ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await sleep(5);
  }
}

describe('the access read model', () => {
  it('holds the catalog, the global policy and a heartbeat after start', async () => {
    expect(reader.catalog()?.roles.org_admin?.scopes).toContain('platform:member:manage');
    expect(reader.policy(null)?.keys['platform.projects.max_per_department']).toBeDefined();
    expect(reader.isFresh()).toBe(true);
  });

  it('gets a membership change within a second of its commit', async () => {
    let founder = await fx.signIn(`founder-${randomUUID()}@example.test`);
    const asPlatform = fx.callerFor({ ...fx.callerOf(founder).principal, platformRoles: ['platform_admin'] });
    const organization = await fx.services.hierarchy.createOrganization(asPlatform, { slug: uniqueSlug('org'), name: 'Org' });
    founder = await reloadEntry(fx, founder);
    const dev = await fx.signIn(`dev-${randomUUID()}@example.test`);
    await until(() => reader.principal(dev.issuer, dev.subject), (entry) => entry.version >= dev.version);

    const committed = Date.now();
    const membership = await fx.services.memberships.grantRole(fx.callerOf(founder), { userId: dev.userId, level: 'organization', nodeId: organization.id, role: 'viewer' });
    const granted = await until(() => reader.principal(dev.issuer, dev.subject), (entry: PrincipalEntry) => entry.grants.length === 1);
    const grantMs = Date.now() - committed;

    expect(granted.grants[0]).toMatchObject({ id: organization.id, role: 'viewer', organizationId: organization.id });
    expect(grantMs).toBeLessThan(1_000);

    const removing = Date.now();
    await fx.services.memberships.removeMembership(fx.callerOf(founder), membership.id);
    await until(() => reader.principal(dev.issuer, dev.subject), (entry: PrincipalEntry) => entry.grants.length === 0);
    expect(Date.now() - removing).toBeLessThan(1_000);
  });

  it('publishes a new organization policy snapshot after the organization is created', async () => {
    const founder = await fx.signIn(`founder-${randomUUID()}@example.test`);
    const asPlatform = fx.callerFor({ ...fx.callerOf(founder).principal, platformRoles: ['platform_admin'] });

    const organization = await fx.services.hierarchy.createOrganization(asPlatform, { slug: uniqueSlug('org'), name: 'Org' });

    const snapshot = await until(() => reader.policy(organization.id), () => true);
    expect(snapshot.organizationId).toBe(organization.id);
  });
});

describe('the credentials in the access read model', () => {
  it('follow every change of a key through iam\'s events alone, each at a newer version', async () => {
    const tenant = await foundProject(fx);
    const { apiKey, owner } = await keyOf(fx, tenant);
    // Nothing pushes entries straight from the commit here: only the outbox, the relay and the projection.
    expect(await until(() => reader.apiKey(apiKey.id), () => true)).toMatchObject({ status: 'active', version: 1, hash: apiKey.hash });

    const rotated = await fx.services.apiKeys.rotateApiKey(owner, { id: apiKey.id, graceSeconds: 60 });
    await until(() => reader.apiKey(apiKey.id), (entry: ApiKeyEntry) => entry.version === 2 && entry.graceUntil !== null);
    await until(() => reader.apiKey(rotated.apiKey.id), (entry: ApiKeyEntry) => entry.status === 'active');

    const revoking = Date.now();
    await fx.services.apiKeys.revokeApiKey(owner, { id: apiKey.id });
    const revoked = await until(() => reader.apiKey(apiKey.id), (entry: ApiKeyEntry) => entry.status === 'revoked');
    expect(revoked.version).toBe(3);
    expect(Date.now() - revoking).toBeLessThan(1_000);

    await fx.services.hierarchy.archiveProject(owner, tenant.project.id);
    await until(() => reader.apiKey(rotated.apiKey.id), (entry: ApiKeyEntry) => entry.status === 'project_archived');
    // The revoked key stays revoked: archiving bumps only the keys that still work.
    expect(reader.apiKey(apiKey.id)).toMatchObject({ status: 'revoked', version: 3 });
  });

  it('are all written by a fresh start, service identities before iam serves', async () => {
    const tenant = await foundProject(fx);
    const { apiKey, owner } = await keyOf(fx, tenant);
    await fx.services.apiKeys.revokeApiKey(owner, { id: apiKey.id });
    const prefix = uniqueEventSubjectPrefix();
    const fresh = await startReadModel(prefix);
    const freshReader = new AccessModelReader({ nc, subjectPrefix: prefix, clock: systemClock, logger: quietLogger('reader'), maxAgeMs: 5_000 });
    try {
      await freshReader.start();
      await freshReader.whenReady();
      expect(freshReader.serviceIdentity('billing')).toMatchObject({ status: 'active', scopes: ['platform:organization:read'], audiences: ['iam'], keys: [] });
      await fresh.rebuilt;
      await until(() => freshReader.apiKey(apiKey.id), () => true);
      expect(freshReader.apiKey(apiKey.id)).toMatchObject({ status: 'revoked', version: 2, organizationId: tenant.organization.id });
    } finally {
      await freshReader.stop();
      await fresh.stop();
      await deleteAccessBucket(nc, prefix);
      await deleteEventStreams(prefix);
    }
  });
});
