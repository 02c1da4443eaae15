import type { PrincipalEntry } from '@aifactory/authz';
import { ManualClock, systemClock } from '@aifactory/clock';
import { createLogger } from '@aifactory/logging';
import { captureLogs, uniqueEventSubjectPrefix } from '@aifactory/testing';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  AccessModelPublisher,
  AccessModelReader,
  CATALOG_KEY,
  deleteAccessBucket,
  openAccessBucket,
  principalKey,
  type AccessModelReaderOptions,
} from '../src/index.js';
import {
  catalogSnapshot,
  connectTestNats,
  eventually,
  heartbeatAt,
  policySnapshot,
  principalEntry,
  quietLogger,
} from './fixtures.js';

let nc: NatsConnection;
let subjectPrefix: string;
const readers: AccessModelReader[] = [];

beforeEach(async () => {
  nc = await connectTestNats('access-model-reader-test');
  subjectPrefix = uniqueEventSubjectPrefix();
});

afterEach(async () => {
  await Promise.all(readers.splice(0).map((reader) => reader.stop()));
  await deleteAccessBucket(nc, subjectPrefix);
  await nc.close();
});

function reader(options: Partial<AccessModelReaderOptions> = {}): AccessModelReader {
  const created = new AccessModelReader({
    nc,
    subjectPrefix,
    clock: systemClock,
    logger: quietLogger(),
    maxAgeMs: 10_000,
    bindRetryMs: 50,
    ...options,
  });
  readers.push(created);
  return created;
}

function publisher(): Promise<AccessModelPublisher> {
  return AccessModelPublisher.open({ nc, subjectPrefix, logger: quietLogger() });
}

describe('AccessModelReader', () => {
  it('loads what the bucket holds before start resolves, then follows each change in order', async () => {
    const iam = await publisher();
    const ada = principalEntry(1);
    const orgId = ada.grants[0]?.organizationId ?? '';
    await iam.putCatalog(catalogSnapshot(1));
    await iam.putPrincipal(ada);
    await iam.putPolicy(policySnapshot(1, null));
    await iam.putPolicy(policySnapshot(1, orgId));
    await iam.heartbeat(heartbeatAt(new Date()));

    const model = reader();
    await model.start();
    expect(model.ready).toBe(true);
    expect(model.catalog()?.version).toBe(1);
    expect(model.principal(ada.issuer, ada.subject)).toEqual(ada);
    expect(model.policy(null)?.version).toBe(1);
    expect(model.policy(orgId)?.organizationId).toBe(orgId);
    expect(model.principal(ada.issuer, 'someone-else')).toBeUndefined();

    const seen: number[] = [];
    model.onPrincipalChange((entry) => seen.push(entry.version));
    for (let version = 2; version <= 6; version++) await iam.putPrincipal({ ...ada, version });
    await eventually(() => seen.length === 5, 5_000, 'five principal changes');
    expect(seen).toEqual([2, 3, 4, 5, 6]);
    expect(model.principal(ada.issuer, ada.subject)?.version).toBe(6);
    expect(model.stats()).toMatchObject({ ready: true, principals: 1, policies: 2, catalogVersion: 1 });
  });

  it('brings a change to two readers within a second', async () => {
    const iam = await publisher();
    await iam.putCatalog(catalogSnapshot(1));
    const gateway = reader();
    const subgraph = reader({ keys: 'catalog-and-policy' });
    await Promise.all([gateway.start(), subgraph.start()]);

    const published = Date.now();
    await iam.putCatalog(catalogSnapshot(2));
    await eventually(() => gateway.catalog()?.version === 2 && subgraph.catalog()?.version === 2, 5_000, 'both readers');
    const elapsedMs = Date.now() - published;
    expect(elapsedMs).toBeLessThan(5_000);
  });

  it('tells catalog listeners about a new catalog', async () => {
    const iam = await publisher();
    const model = reader({ keys: 'catalog-and-policy' });
    await model.start();
    const versions: number[] = [];
    model.onCatalogChange((catalog) => versions.push(catalog.version));
    await iam.putCatalog(catalogSnapshot(7));
    await eventually(() => versions.length === 1, 5_000, 'the catalog change');
    expect(versions).toEqual([7]);
  });

  it('leaves principals out of a reader that asked only for catalog and policy', async () => {
    const iam = await publisher();
    const ada = principalEntry(1);
    await iam.putPrincipal(ada);
    await iam.putPolicy(policySnapshot(3, null));
    const model = reader({ keys: 'catalog-and-policy' });
    await model.start();
    expect(model.policy(null)?.version).toBe(3);
    expect(model.principal(ada.issuer, ada.subject)).toBeUndefined();
    expect(model.stats().principals).toBe(0);
  });

  it('reports its age from the last heartbeat and turns stale past the budget', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 12));
    const iam = await publisher();
    const model = reader({ clock, maxAgeMs: 5_000 });
    await iam.putCatalog(catalogSnapshot(1));
    await model.start();
    expect(model.ageMs()).toBeNull();
    expect(model.isFresh()).toBe(false);

    await iam.heartbeat(heartbeatAt(clock.now()));
    await eventually(() => model.ageMs() !== null, 5_000, 'the heartbeat');
    clock.advance(1_000);
    expect(model.ageMs()).toBe(1_000);
    expect(model.isFresh()).toBe(true);
    clock.advance(5_000);
    expect(model.ageMs()).toBe(6_000);
    expect(model.isFresh()).toBe(false);

    await iam.heartbeat(heartbeatAt(clock.now()));
    await eventually(() => model.isFresh(), 5_000, 'fresh again');
    expect(model.ageMs()).toBe(0);
  });

  it('starts before the bucket exists and becomes ready once iam creates it', async () => {
    const model = reader();
    await model.start();
    expect(model.ready).toBe(false);
    expect(model.catalog()).toBeUndefined();

    const iam = await publisher();
    await iam.putCatalog(catalogSnapshot(4));
    await model.whenReady();
    await eventually(() => model.catalog()?.version === 4, 5_000, 'the catalog');
    expect(model.ready).toBe(true);
  });

  it('logs and ignores values that fail their schema, keeping the last good one', async () => {
    const iam = await publisher();
    const ada = principalEntry(1);
    const key = principalKey(ada.issuer, ada.subject);
    await iam.putPrincipal(ada);
    const kv = await openAccessBucket(nc, { subjectPrefix, create: false });
    await kv.put(CATALOG_KEY, 'not json');
    const logs = captureLogs();
    const model = reader({ logger: createLogger({ service: 'access-model-test', destination: logs.destination }) });
    await model.start();
    expect(model.catalog()).toBeUndefined();

    await kv.put(key, JSON.stringify({ ...ada, version: 2, grants: [{ level: 'galaxy' }] }));
    await iam.putCatalog(catalogSnapshot(2));
    await eventually(() => model.catalog()?.version === 2, 5_000, 'the valid catalog after the invalid principal');
    expect(model.principal(ada.issuer, ada.subject)).toEqual(ada);
    expect(model.stats().invalidValues).toBe(2);
    const warnings = logs.lines().filter((line) => line.msg === 'access model value invalid; ignored');
    expect(warnings.map((line) => line['key'])).toEqual([CATALOG_KEY, key]);
  });

  it('tells listeners that a removed principal holds nothing', async () => {
    const iam = await publisher();
    const ada = principalEntry(3);
    await iam.putPrincipal(ada);
    const model = reader();
    await model.start();
    const changes: Array<{ entry: PrincipalEntry; previous: PrincipalEntry | undefined }> = [];
    model.onPrincipalChange((entry, previous) => changes.push({ entry, previous }));

    const kv = await openAccessBucket(nc, { subjectPrefix, create: false });
    await kv.delete(principalKey(ada.issuer, ada.subject));
    await eventually(() => changes.length === 1, 5_000, 'the removal');
    expect(model.principal(ada.issuer, ada.subject)).toBeUndefined();
    expect(changes[0]?.entry).toMatchObject({ userId: ada.userId, grants: [], platformRoles: [] });
    expect(changes[0]?.previous).toEqual(ada);
  });

  it('binds again when the bucket is deleted and recreated, telling listeners what changed', async () => {
    let iam = await publisher();
    const ada = principalEntry(1);
    const bob = principalEntry(1);
    await iam.putCatalog(catalogSnapshot(1));
    await iam.putPrincipal(ada);
    await iam.putPrincipal(bob);
    // No heartbeats here, so the reader is stale and checks its bucket every 50 ms.
    const model = reader({ verifyBucketEveryMs: 50 });
    await model.start();
    const changes: PrincipalEntry[] = [];
    model.onPrincipalChange((entry) => changes.push(entry));

    await deleteAccessBucket(nc, subjectPrefix);
    iam = await publisher();
    await iam.putCatalog(catalogSnapshot(2));
    await iam.putPrincipal({ ...ada, version: 2 });
    await eventually(
      () => model.catalog()?.version === 2 && model.principal(ada.issuer, ada.subject)?.version === 2,
      10_000,
      'the recreated bucket',
    );
    expect(model.principal(bob.issuer, bob.subject)).toBeUndefined();
    expect(changes.filter((entry) => entry.userId === bob.userId).at(-1)?.grants).toEqual([]);
    expect(changes.filter((entry) => entry.userId === ada.userId).at(-1)?.version).toBe(2);
    expect(model.stats().rebinds).toBe(1);
  });

  it('rejects whenReady when stopped before it was ever ready', async () => {
    const model = reader();
    await model.start();
    const ready = model.whenReady();
    await model.stop();
    await expect(ready).rejects.toMatchObject({ code: 'AUTH_READ_MODEL_STALE' });
  });
});
