import { randomUUID } from 'node:crypto';
import type { ApiKeyEntry } from '@aifactory/authz';
import { ManualClock } from '@aifactory/clock';
import { isAppError } from '@aifactory/errors';
import { createLogger } from '@aifactory/logging';
import { issueApiKey, PepperRing, readPepperFile, writePepperFile, newPepperValue, type IssuedApiKey } from '@aifactory/service-auth';
import { ServiceMetrics } from '@aifactory/telemetry';
import { tempKeyDir, TEST_REDIS_URL, type TempKeys } from '@aifactory/testing';
import { Redis } from 'ioredis';
import { RateLimiter } from '../edge/rate-limiter.js';
import { ApiKeyFailureLimit } from './api-key-failure-limit.js';
import { ApiKeyAuthenticator, presentedApiKey, type ApiKeyReadModel, type ApiKeyRefusal, type ApiKeyUse } from './api-keys.js';

const NOW_MS = Date.UTC(2026, 0, 1, 12, 0, 0);
const MAX_AGE_MS = 15_000;
const NEGATIVE_CACHE_MS = 5_000;
const logger = createLogger({ service: 'api-keys-test', level: 'silent' });

/** Plays the access read model: entries by key id, a heartbeat age, change listeners; counts lookups. */
class FakeKeys implements ApiKeyReadModel {
  readonly entries = new Map<string, ApiKeyEntry>();
  heartbeatAgeMs: number | null = 1_000;
  fresh = true;
  lookups = 0;
  private readonly listeners = new Set<(keyId: string, entry: ApiKeyEntry | undefined) => void>();

  isFresh(): boolean {
    return this.fresh;
  }
  ageMs(): number | null {
    return this.heartbeatAgeMs;
  }
  apiKey(keyId: string): ApiKeyEntry | undefined {
    this.lookups += 1;
    return this.entries.get(keyId);
  }
  onApiKeyChange(listener: (keyId: string, entry: ApiKeyEntry | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  put(entry: ApiKeyEntry): void {
    this.entries.set(entry.keyId, entry);
    for (const listener of this.listeners) listener(entry.keyId, entry);
  }
}

describe('API key authentication at the gateway', () => {
  const redis = new Redis(TEST_REDIS_URL);
  let keys: TempKeys;
  let pepperFile: string;
  let pepper: PepperRing;
  let model: FakeKeys;
  let clock: ManualClock;
  let refusals: ApiKeyRefusal[];
  let uses: ApiKeyUse[];
  let hmacs: number;
  let metrics: ServiceMetrics;
  let authenticator: ApiKeyAuthenticator;

  const entryFor = (key: IssuedApiKey, overrides: Partial<ApiKeyEntry> = {}): ApiKeyEntry => ({
    keyId: key.keyId,
    serviceAccountId: randomUUID(),
    organizationId: randomUUID(),
    departmentId: randomUUID(),
    projectId: randomUUID(),
    scopes: ['platform:project:read'],
    status: 'active',
    expiresAt: null,
    graceUntil: null,
    hash: pepper.hash(key.secret, 1),
    pepperVersion: 1,
    registryVersion: 4,
    version: 1,
    updatedAt: new Date(NOW_MS).toISOString(),
    ...overrides,
  });
  /** A key with its entry in the read model. */
  const known = (overrides: Partial<ApiKeyEntry> = {}) => {
    const key = issueApiKey('test');
    const entry = entryFor(key, overrides);
    model.put(entry);
    return { key, entry };
  };
  const codeOf = async (attempt: Promise<unknown>): Promise<string> => {
    try {
      await attempt;
    } catch (error) {
      if (isAppError(error)) return error.code;
      throw error;
    }
    return 'accepted';
  };
  const source = () => `198.51.100.${Math.floor(Math.random() * 250)}:${randomUUID()}`;
  const build = (failureLimit = { limit: 20, windowSeconds: 60 }) => {
    metrics = new ServiceMetrics('gateway-test');
    authenticator = new ApiKeyAuthenticator({
      model,
      pepper,
      maxAgeMs: MAX_AGE_MS,
      failureLimit: new ApiKeyFailureLimit(new RateLimiter({ redis, keyPrefix: `test:api-keys:${randomUUID()}:`, clock, logger }), failureLimit, clock),
      negativeCacheMs: NEGATIVE_CACHE_MS,
      clock,
      logger,
      metrics,
      onRefused: (refusal) => refusals.push(refusal),
      onAccepted: (use) => uses.push(use),
    });
  };

  beforeAll(async () => {
    keys = await tempKeyDir();
  });
  afterEach(() => pepper.close());
  afterAll(async () => {
    await keys.cleanup();
    await redis.quit();
  });

  beforeEach(async () => {
    pepperFile = await keys.pepper(randomUUID());
    pepper = await PepperRing.load(pepperFile);
    const verify = pepper.verify.bind(pepper);
    hmacs = 0;
    pepper.verify = (secret, version, expected) => {
      hmacs += 1;
      return verify(secret, version, expected);
    };
    model = new FakeKeys();
    clock = new ManualClock(NOW_MS);
    refusals = [];
    uses = [];
    build();
  });

  it("turns a verified key into its service account's principal, in its one project with its scopes", async () => {
    const { key, entry } = known();
    const first = await authenticator.authenticate(key.raw, source(), 'corr-1');
    expect(first.principal).toEqual({
      type: 'service_account',
      subject: entry.serviceAccountId,
      apiKeyId: entry.keyId,
      projectId: entry.projectId,
      organizationId: entry.organizationId,
      departmentId: entry.departmentId,
      scopes: ['platform:project:read'],
      registryVersion: 4,
      platformRoles: [],
      grants: [],
    });
    expect(first.endsAtMs).toBe(Number.POSITIVE_INFINITY);
    const second = await authenticator.authenticate(key.raw, source(), 'corr-2');
    // Built once per read-model entry.
    expect(second.principal).toBe(first.principal);
    expect(uses.map((use) => use.entry)).toEqual([entry, entry]);
    expect(uses[0]?.rehash).toBeUndefined();
  });

  it('reports a real key id with a wrong secret unknown, not revoked', async () => {
    const { key } = known({ status: 'revoked' });
    const forged = issueApiKey('test', key.keyId);
    expect(await codeOf(authenticator.authenticate(forged.raw, source(), 'corr'))).toBe('AUTH_API_KEY_UNKNOWN');
    expect(await codeOf(authenticator.authenticate(key.raw, source(), 'corr'))).toBe('AUTH_API_KEY_REVOKED');
    // Only the verified refusal names whose key it was.
    expect(refusals.map((refusal) => [refusal.reason, refusal.entry?.organizationId ?? null])).toEqual([
      ['unknown', null],
      ['revoked', model.entries.get(key.keyId)?.organizationId],
    ]);
  });

  it('spends an HMAC on a key id with no entry, so an unknown id takes as long as a wrong secret', async () => {
    const stranger = issueApiKey('test');
    expect(await codeOf(authenticator.authenticate(stranger.raw, source(), 'corr'))).toBe('AUTH_API_KEY_UNKNOWN');
    expect(hmacs).toBe(1);
    expect(refusals).toEqual([expect.objectContaining({ reason: 'unknown', keyId: stranger.keyId, entry: undefined })]);
  });

  it('refuses a malformed key or one with a bad checksum as unknown, without a lookup', async () => {
    const { key } = known();
    const badChecksum = `${key.raw.slice(0, -1)}${key.raw.endsWith('A') ? 'B' : 'A'}`;
    for (const text of ['', 'not-a-key', badChecksum]) expect(await codeOf(authenticator.authenticate(text, source(), 'corr'))).toBe('AUTH_API_KEY_UNKNOWN');
    expect(model.lookups).toBe(0);
    expect(hmacs).toBe(0);
    expect(refusals.every((refusal) => refusal.keyId === undefined && refusal.entry === undefined)).toBe(true);
  });

  it('says expired from the instant of expiry, and only to the holder of the secret', async () => {
    const { key } = known({ expiresAt: new Date(NOW_MS + 1_000).toISOString() });
    const found = await authenticator.authenticate(key.raw, source(), 'corr');
    expect(found.endsAtMs).toBe(NOW_MS + 1_000);
    clock.advance(1_000);
    expect(await codeOf(authenticator.authenticate(key.raw, source(), 'corr'))).toBe('AUTH_API_KEY_EXPIRED');
    expect(await codeOf(authenticator.authenticate(issueApiKey('test', key.keyId).raw, source(), 'corr'))).toBe('AUTH_API_KEY_UNKNOWN');
  });

  it("keeps a rotated key working through its grace, then says rotated out", async () => {
    const { key } = known({ graceUntil: new Date(NOW_MS + 60_000).toISOString() });
    expect((await authenticator.authenticate(key.raw, source(), 'corr')).endsAtMs).toBe(NOW_MS + 60_000);
    clock.advance(60_000);
    expect(await codeOf(authenticator.authenticate(key.raw, source(), 'corr'))).toBe('AUTH_API_KEY_ROTATED_OUT');
  });

  it("says suspended for a key of an archived project", async () => {
    const { key } = known({ status: 'project_archived' });
    expect(await codeOf(authenticator.authenticate(key.raw, source(), 'corr'))).toBe('AUTH_API_KEY_SUSPENDED');
  });

  it('fails closed with AUTH_READ_MODEL_STALE past the key budget, before the read model itself is stale', async () => {
    const { key } = known();
    model.heartbeatAgeMs = MAX_AGE_MS + 1;
    expect(await codeOf(authenticator.authenticate(key.raw, source(), 'corr'))).toBe('AUTH_READ_MODEL_STALE');
    model.heartbeatAgeMs = 1_000;
    model.fresh = false;
    expect(await codeOf(authenticator.authenticate(key.raw, source(), 'corr'))).toBe('AUTH_READ_MODEL_STALE');
    model.heartbeatAgeMs = null;
    model.fresh = true;
    expect(await codeOf(authenticator.authenticate(key.raw, source(), 'corr'))).toBe('AUTH_READ_MODEL_STALE');
    expect(model.lookups).toBe(0);
    // Our outage, not the caller's refusal: not audited, not cached.
    expect(refusals).toEqual([]);
    model.heartbeatAgeMs = 1_000;
    expect(await codeOf(authenticator.authenticate(key.raw, source(), 'corr'))).toBe('accepted');
  });

  it('answers a repeated bad key from the negative cache, with no HMAC and no lookup, until it expires', async () => {
    const { key } = known();
    const forged = issueApiKey('test', key.keyId);
    const from = source();
    expect(await codeOf(authenticator.authenticate(forged.raw, from, 'corr'))).toBe('AUTH_API_KEY_UNKNOWN');
    expect([hmacs, model.lookups]).toEqual([1, 1]);
    for (let i = 0; i < 3; i++) expect(await codeOf(authenticator.authenticate(forged.raw, from, 'corr'))).toBe('AUTH_API_KEY_UNKNOWN');
    expect([hmacs, model.lookups]).toEqual([1, 1]);
    // The real key is another text: it is judged, not answered from the cache.
    expect(await codeOf(authenticator.authenticate(key.raw, from, 'corr'))).toBe('accepted');
    clock.advance(NEGATIVE_CACHE_MS);
    expect(await codeOf(authenticator.authenticate(forged.raw, from, 'corr'))).toBe('AUTH_API_KEY_UNKNOWN');
    expect(model.lookups).toBe(3);
    expect((await metrics.render()).body).toMatch(/aif_api_key_negative_cache_hits_total\{[^}]*\} 3/);
  });

  it("forgets a key id's cached refusals when its entry changes, so a key published a moment later works", async () => {
    const key = issueApiKey('test');
    expect(await codeOf(authenticator.authenticate(key.raw, source(), 'corr'))).toBe('AUTH_API_KEY_UNKNOWN');
    model.put(entryFor(key));
    expect(await codeOf(authenticator.authenticate(key.raw, source(), 'corr'))).toBe('accepted');
  });

  it('refuses a source with AUTH_TOO_MANY_FAILURES once its failures go over the limit, before any lookup, even for a good key', async () => {
    build({ limit: 3, windowSeconds: 60 });
    const { key } = known();
    const from = source();
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push(await codeOf(authenticator.authenticate(issueApiKey('test').raw, from, 'corr')));
    expect(codes).toEqual(['AUTH_API_KEY_UNKNOWN', 'AUTH_API_KEY_UNKNOWN', 'AUTH_API_KEY_UNKNOWN', 'AUTH_TOO_MANY_FAILURES']);
    const lookups = model.lookups;
    const blocked = authenticator.authenticate(key.raw, from, 'corr');
    await expect(blocked).rejects.toMatchObject({ code: 'AUTH_TOO_MANY_FAILURES', details: { retryAfterSeconds: 60 } });
    expect(model.lookups).toBe(lookups);
    // Another source is not affected, and the window ends.
    expect(await codeOf(authenticator.authenticate(key.raw, source(), 'corr'))).toBe('accepted');
    clock.advance(60_000);
    expect(await codeOf(authenticator.authenticate(key.raw, from, 'corr'))).toBe('accepted');
    const { body } = await metrics.render();
    expect(body).toMatch(/aif_api_key_validation_failures_total\{[^}]*reason="rate_limited"[^}]*\} 2/);
    expect(body).toMatch(/aif_api_key_validation_failures_total\{[^}]*reason="unknown"[^}]*\} 3/);
    expect(refusals.filter((refusal) => refusal.reason === 'rate_limited')).toHaveLength(1);
  });

  it('offers a re-hash under the current pepper when the stored hash is of an older version', async () => {
    const { key } = known();
    const file = await readPepperFile(pepperFile);
    await writePepperFile(pepperFile, { current: 2, versions: { ...file.versions, '2': newPepperValue() } });
    await pepper.reload();
    await authenticator.authenticate(key.raw, source(), 'corr');
    const rehash = uses[0]?.rehash?.();
    expect(rehash).toEqual({ pepperVersion: 2, hash: pepper.hash(key.secret, 2) });
    expect(rehash?.hash).not.toBe(model.entries.get(key.keyId)?.hash);
  });

  it('reads a pepper version it does not hold yet from the file, so a key hashed after a rotation works', async () => {
    const file = await readPepperFile(pepperFile);
    const newer = newPepperValue();
    await writePepperFile(pepperFile, { current: 2, versions: { ...file.versions, '2': newer } });
    const key = issueApiKey('test');
    const other = await PepperRing.load(pepperFile);
    model.put(entryFor(key, { hash: other.hash(key.secret, 2), pepperVersion: 2 }));
    expect(pepper.has(2)).toBe(false);
    expect(await codeOf(authenticator.authenticate(key.raw, source(), 'corr'))).toBe('accepted');
    expect(uses[0]?.rehash).toBeUndefined();
  });

  it('re-judges an authenticated key from its current entry: revoked, re-scoped or removed', () => {
    const { key, entry } = known();
    expect(authenticator.standing(key.keyId)).toMatchObject({ principal: { scopes: ['platform:project:read'] } });
    model.put({ ...entry, scopes: [], version: 2 });
    expect(authenticator.standing(key.keyId)).toMatchObject({ principal: { scopes: [] } });
    model.put({ ...entry, status: 'revoked', version: 3 });
    expect(authenticator.standing(key.keyId)).toMatchObject({ code: 'AUTH_API_KEY_REVOKED' });
    model.entries.delete(key.keyId);
    expect(authenticator.standing(key.keyId)).toMatchObject({ code: 'AUTH_API_KEY_UNKNOWN' });
  });

  it('takes a key from a Bearer header only, and leaves Pomerium tokens to the assertion check', () => {
    expect(presentedApiKey('Bearer aif_test_abc')).toBe('aif_test_abc');
    expect(presentedApiKey('bearer   aif_test_abc  ')).toBe('aif_test_abc');
    expect(presentedApiKey(['Bearer k1', 'Bearer k2'])).toBe('k1');
    expect(presentedApiKey('Bearer')).toBe('');
    expect(presentedApiKey('Basic dXNlcjpwYXNz')).toBeUndefined();
    expect(presentedApiKey('Bearer Pomerium-eyJhbGciOi')).toBeUndefined();
    expect(presentedApiKey(undefined)).toBeUndefined();
  });
});
