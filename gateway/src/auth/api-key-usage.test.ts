import type { ApiKeyEntry } from '@aifactory/authz';
import { ManualClock } from '@aifactory/clock';
import { createLogger } from '@aifactory/logging';
import { ApiKeyUsageReporter, type ApiKeyUsageReport } from './api-key-usage.js';
import type { ApiKeyUse } from './api-keys.js';

const NOW_MS = Date.UTC(2026, 0, 1, 12, 0, 0);
const FLUSH_MS = 5_000;
const logger = createLogger({ service: 'api-key-usage-test', level: 'silent' });

function use(keyId: string, atMs: number, rehash?: { pepperVersion: number; hash: string }): ApiKeyUse {
  return { entry: { keyId } as ApiKeyEntry, atMs, ...(rehash ? { rehash: () => rehash } : {}) };
}

describe('API key last-use reports to iam', () => {
  let clock: ManualClock;
  let calls: ApiKeyUsageReport[][];
  /** Answers of the fake iam, in order; true by default. */
  let answers: boolean[];
  let reporter: ApiKeyUsageReporter;

  beforeEach(() => {
    clock = new ManualClock(NOW_MS);
    calls = [];
    answers = [];
    reporter = new ApiKeyUsageReporter({
      send: async (uses) => {
        calls.push(uses);
        if (answers.shift() === false) throw new Error('iam answered 503');
      },
      clock,
      logger,
      flushEveryMs: FLUSH_MS,
    });
  });
  afterEach(() => reporter.close());

  it('reports a key at most once a minute, however often it is used', async () => {
    for (let second = 0; second < 50; second += 10) reporter.record(use('k1', NOW_MS + second * 1_000));
    await reporter.flush();
    expect(calls).toEqual([[{ keyId: 'k1', usedAt: new Date(NOW_MS).toISOString() }]]);
    reporter.record(use('k1', NOW_MS + 59_999));
    await reporter.flush();
    expect(calls).toHaveLength(1);
    reporter.record(use('k1', NOW_MS + 60_000));
    await reporter.flush();
    expect(calls[1]).toEqual([{ keyId: 'k1', usedAt: new Date(NOW_MS + 60_000).toISOString() }]);
  });

  it('sends many keys in batches of at most 500', async () => {
    for (let i = 0; i < 1_200; i++) reporter.record(use(`k${i}`, NOW_MS));
    await reporter.flush();
    expect(calls.map((batch) => batch.length)).toEqual([500, 500, 200]);
    expect(new Set(calls.flat().map((report) => report.keyId)).size).toBe(1_200);
  });

  it('keeps a batch iam did not take and sends it again after a pause', async () => {
    answers = [false];
    reporter.record(use('k1', NOW_MS));
    await reporter.flush();
    expect(reporter.waiting).toBe(1);
    // Within the pause after the failure nothing is sent.
    clock.advance(FLUSH_MS - 1);
    await reporter.flush();
    expect(calls).toHaveLength(1);
    clock.advance(1);
    await reporter.flush();
    expect(calls[1]).toEqual([{ keyId: 'k1', usedAt: new Date(NOW_MS).toISOString() }]);
    expect(reporter.waiting).toBe(0);
  });

  it('merges a newer use into a line still waiting after a failure', async () => {
    answers = [false];
    reporter.record(use('k1', NOW_MS));
    await reporter.flush();
    clock.advance(60_000);
    reporter.record(use('k1', clock.nowMs()));
    await reporter.flush();
    expect(calls[1]).toEqual([{ keyId: 'k1', usedAt: new Date(NOW_MS + 60_000).toISOString() }]);
  });

  it('waits longer after each failure in a row', async () => {
    answers = [false, false];
    reporter.record(use('k1', NOW_MS));
    await reporter.flush();
    clock.advance(FLUSH_MS);
    await reporter.flush();
    expect(calls).toHaveLength(2);
    clock.advance(FLUSH_MS);
    await reporter.flush();
    expect(calls).toHaveLength(2);
    clock.advance(FLUSH_MS);
    await reporter.flush();
    expect(calls).toHaveLength(3);
  });

  it('sends a re-hash at once, not waiting for the next batch, and only once a minute', async () => {
    reporter.record(use('k1', NOW_MS));
    await reporter.flush();
    reporter.record(use('k1', NOW_MS + 1_000, { pepperVersion: 2, hash: 'h2' }));
    // No flush here: the re-hash started one itself.
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls[1]).toEqual([{ keyId: 'k1', usedAt: new Date(NOW_MS + 1_000).toISOString(), rehash: { pepperVersion: 2, hash: 'h2' } }]);
    reporter.record(use('k1', NOW_MS + 2_000, { pepperVersion: 2, hash: 'h2' }));
    await reporter.flush();
    expect(calls).toHaveLength(2);
  });

  it('keeps a re-hash that failed until it is delivered', async () => {
    answers = [false];
    reporter.record(use('k1', NOW_MS, { pepperVersion: 2, hash: 'h2' }));
    await reporter.flush();
    clock.advance(FLUSH_MS);
    reporter.record(use('k1', clock.nowMs()));
    await reporter.flush();
    expect(calls[1]).toEqual([{ keyId: 'k1', usedAt: new Date(NOW_MS).toISOString(), rehash: { pepperVersion: 2, hash: 'h2' } }]);
  });

  it('sends what waits when it closes', async () => {
    reporter.record(use('k1', NOW_MS));
    await reporter.close();
    expect(calls).toEqual([[{ keyId: 'k1', usedAt: new Date(NOW_MS).toISOString() }]]);
  });
});
