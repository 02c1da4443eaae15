import { uniqueEventSubjectPrefix } from '@aifactory/testing';
import type { NatsConnection } from '@nats-io/transport-node';
import { AccessModelPublisher, CATALOG_KEY, deleteAccessBucket, openAccessBucket, principalKey } from '../src/index.js';
import { catalogSnapshot, connectTestNats, eventually, principalEntry, quietLogger } from './fixtures.js';

let nc: NatsConnection;
let subjectPrefix: string;

beforeEach(async () => {
  nc = await connectTestNats('access-model-publisher-test');
  subjectPrefix = uniqueEventSubjectPrefix();
});

afterEach(async () => {
  await deleteAccessBucket(nc, subjectPrefix);
  await nc.close();
});

async function storedVersion(key: string): Promise<number | undefined> {
  const kv = await openAccessBucket(nc, { subjectPrefix, create: false });
  const entry = await kv.get(key);
  return entry === null ? undefined : entry.json<{ version: number }>().version;
}

describe('AccessModelPublisher', () => {
  it('creates the bucket with one value per key, on file, without expiry, and again without complaint', async () => {
    await AccessModelPublisher.open({ nc, subjectPrefix, logger: quietLogger() });
    await AccessModelPublisher.open({ nc, subjectPrefix, logger: quietLogger() });
    const status = await (await openAccessBucket(nc, { subjectPrefix, create: false })).status();
    expect(status.bucket).toBe(`${subjectPrefix.toUpperCase()}_IAM_ACCESS`);
    expect(status.history).toBe(1);
    expect(status.storage).toBe('file');
    expect(status.ttl).toBe(0);
  });

  it('writes a newer version and skips an equal or older one', async () => {
    const publisher = await AccessModelPublisher.open({ nc, subjectPrefix, logger: quietLogger() });
    expect(await publisher.putCatalog(catalogSnapshot(5))).toBe(true);
    expect(await publisher.putCatalog(catalogSnapshot(3))).toBe(false);
    expect(await publisher.putCatalog(catalogSnapshot(5))).toBe(false);
    expect(await storedVersion(CATALOG_KEY)).toBe(5);
    expect(await publisher.putCatalog(catalogSnapshot(6))).toBe(true);
    expect(await storedVersion(CATALOG_KEY)).toBe(6);
  });

  it('never moves a principal backwards when a full rebuild races a delta on another connection', async () => {
    const other = await connectTestNats('access-model-publisher-test-2');
    try {
      const rebuild = await AccessModelPublisher.open({ nc, subjectPrefix, logger: quietLogger() });
      const deltas = await AccessModelPublisher.open({ nc: other, subjectPrefix, logger: quietLogger() });
      const base = principalEntry(1);
      const key = principalKey(base.issuer, base.subject);
      const seen: number[] = [];
      const watch = await (await openAccessBucket(nc, { subjectPrefix, create: false })).watch({ key });
      void (async () => {
        for await (const change of watch) seen.push(change.json<{ version: number }>().version);
      })();
      const versions = Array.from({ length: 40 }, (_, i) => i + 1);
      // Both publishers write every version, each in its own shuffled order, all at once.
      const writes = [rebuild, deltas].flatMap((publisher) =>
        shuffled(versions).map((version) => publisher.putPrincipal({ ...base, version })),
      );
      const wrote = await Promise.all(writes);
      expect(await storedVersion(key)).toBe(40);
      await eventually(() => seen.at(-1) === 40, 5_000, 'the last write to be watched');
      watch.stop();
      // Every value the key ever held, in order: none older than the one before it.
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
      expect(new Set(seen).size).toBe(seen.length);
      expect(wrote.filter(Boolean).length).toBe(seen.length);
    } finally {
      await other.close();
    }
  });

  it('refuses a value that does not match its schema, writing nothing', async () => {
    const publisher = await AccessModelPublisher.open({ nc, subjectPrefix, logger: quietLogger() });
    const entry = principalEntry(1);
    await expect(publisher.putPrincipal({ ...entry, version: 0 })).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
    expect(await storedVersion(principalKey(entry.issuer, entry.subject))).toBeUndefined();
  });

  it('beats until stopped', async () => {
    const publisher = await AccessModelPublisher.open({ nc, subjectPrefix, logger: quietLogger() });
    let beats = 0;
    const stop = publisher.startHeartbeat(20, () => {
      beats += 1;
      return { at: new Date().toISOString(), catalogVersion: 1, policyVersion: beats };
    });
    await eventually(() => beats >= 3, 5_000, 'three beats');
    stop();
    const kv = await openAccessBucket(nc, { subjectPrefix, create: false });
    const stored = (await kv.get('heartbeat'))?.json<{ policyVersion: number }>();
    expect(stored?.policyVersion).toBeGreaterThanOrEqual(2);
    const beatsWhenStopped = beats;
    // Proving an absence takes a wait: five intervals without a beat.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(beats).toBe(beatsWhenStopped);
  });
});

function shuffled<T>(items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}
