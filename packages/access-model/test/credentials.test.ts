import { systemClock } from '@aifactory/clock';
import { uniqueEventSubjectPrefix } from '@aifactory/testing';
import type { NatsConnection } from '@nats-io/transport-node';
import { AccessModelPublisher, AccessModelReader, apiKeyKey, deleteAccessBucket, openAccessBucket, type AccessModelKeys } from '../src/index.js';
import { apiKeyEntry, catalogSnapshot, connectTestNats, eventually, quietLogger, serviceIdentityEntry } from './fixtures.js';

let nc: NatsConnection;
let subjectPrefix: string;
const readers: AccessModelReader[] = [];

beforeEach(async () => {
  nc = await connectTestNats('access-model-credentials-test');
  subjectPrefix = uniqueEventSubjectPrefix();
});

afterEach(async () => {
  await Promise.all(readers.splice(0).map((reader) => reader.stop()));
  await deleteAccessBucket(nc, subjectPrefix);
  await nc.close();
});

async function started(keys: AccessModelKeys): Promise<AccessModelReader> {
  const reader = new AccessModelReader({ nc, subjectPrefix, clock: systemClock, logger: quietLogger(), maxAgeMs: 10_000, bindRetryMs: 50, keys });
  readers.push(reader);
  await reader.start();
  return reader;
}

describe('API keys and service identities in the access read model', () => {
  it('loads a key, follows its revocation in order and tells listeners, on the gateway reader only', async () => {
    const iam = await AccessModelPublisher.open({ nc, subjectPrefix, logger: quietLogger() });
    await iam.putCatalog(catalogSnapshot(1));
    const key = apiKeyEntry(1);
    await iam.putApiKey(key);
    const gateway = await started('all');
    const subgraph = await started('catalog-and-policy');
    expect(gateway.apiKey(key.keyId)).toEqual(key);
    expect(gateway.apiKey('zzzzzzzzzzzzzzzzzzzz')).toBeUndefined();
    expect(subgraph.apiKey(key.keyId)).toBeUndefined();

    const changes: Array<[string, string | undefined]> = [];
    gateway.onApiKeyChange((keyId, entry) => changes.push([keyId, entry?.status]));
    expect(await iam.putApiKey({ ...key, version: 2, status: 'revoked' })).toBe(true);
    // An older version never moves the entry back.
    expect(await iam.putApiKey({ ...key, version: 1, status: 'active' })).toBe(false);
    await eventually(() => changes.length === 1, 5_000, 'the revocation');
    expect(changes).toEqual([[key.keyId, 'revoked']]);
    expect(gateway.apiKey(key.keyId)?.status).toBe('revoked');
    expect(gateway.stats()).toMatchObject({ apiKeys: 1 });

    const kv = await openAccessBucket(nc, { subjectPrefix, create: false });
    await kv.delete(apiKeyKey(key.keyId));
    await eventually(() => changes.length === 2, 5_000, 'the removal');
    expect(changes[1]).toEqual([key.keyId, undefined]);
    expect(gateway.apiKey(key.keyId)).toBeUndefined();
  });

  it('brings service identities to subgraph readers and tells them when one is disabled', async () => {
    const iam = await AccessModelPublisher.open({ nc, subjectPrefix, logger: quietLogger() });
    await iam.putCatalog(catalogSnapshot(1));
    await iam.putServiceIdentity(serviceIdentityEntry(1));
    const subgraph = await started('catalog-and-policy');
    expect(subgraph.serviceIdentity('tokenfactory')?.status).toBe('active');
    const seen: Array<string | undefined> = [];
    subgraph.onServiceIdentityChange((_name, entry) => seen.push(entry?.status));
    await iam.putServiceIdentity(serviceIdentityEntry(2, { status: 'disabled' }));
    await eventually(() => seen.length === 1, 5_000, 'the disable');
    expect(seen).toEqual(['disabled']);
    expect(subgraph.serviceIdentity('tokenfactory')?.status).toBe('disabled');
    expect(subgraph.stats().serviceIdentities).toBe(1);
  });

  it('refuses to publish a key id that could not be a single KV token', async () => {
    const iam = await AccessModelPublisher.open({ nc, subjectPrefix, logger: quietLogger() });
    await expect(iam.putApiKey(apiKeyEntry(1, { keyId: 'a.b' }))).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
    await expect(iam.putApiKey(apiKeyEntry(1, { keyId: 'a>' }))).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
  });
});
