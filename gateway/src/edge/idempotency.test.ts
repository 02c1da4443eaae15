import { createHash, randomUUID } from 'node:crypto';
import { validateIdempotencyKey } from '@aifactory/http';
import { createLogger } from '@aifactory/logging';
import { captureLogs, connectToPrivateRedis, startPrivateRedis, untilRedisReady, TEST_REDIS_URL, type PrivateRedis } from '@aifactory/testing';
import { Redis } from 'ioredis';
import { IdempotencyStore, type IdempotencyStoreOptions, type StoredResponse } from './idempotency.js';

const fingerprint = (body: string) => createHash('sha256').update(body).digest('hex');
const CREATE_BODY = fingerprint('{"query":"mutation { createProject(name: \\"a\\") { id } }"}');
const OTHER_BODY = fingerprint('{"query":"mutation { createProject(name: \\"b\\") { id } }"}');
const CREATED: StoredResponse = {
  status: 200,
  headers: { 'content-type': 'application/json' },
  body: '{"data":{"createProject":{"id":"p1"}}}',
};

async function keysUnder(redis: Redis, keyPrefix: string): Promise<string[]> {
  const found: string[] = [];
  for await (const keys of redis.scanStream({ match: `${keyPrefix}*`, count: 500 })) found.push(...(keys as string[]));
  return found;
}

describe('IdempotencyStore', () => {
  const redis = new Redis(TEST_REDIS_URL);
  const filePrefix = `test:idempotency:${randomUUID()}:`;
  const logs = captureLogs();

  /** Each test gets its own prefix, so it can find the one record it made. */
  function storeWithPrefix(options: Partial<IdempotencyStoreOptions> = {}) {
    const keyPrefix = `${filePrefix}${randomUUID()}:`;
    const store = new IdempotencyStore({
      redis,
      keyPrefix,
      ttlSeconds: 86_400,
      inFlightTtlSeconds: 30,
      logger: createLogger({ service: 'idempotency-test', destination: logs.destination }),
      ...options,
    });
    const onlyRecordKey = async () => {
      const keys = await keysUnder(redis, keyPrefix);
      expect(keys).toHaveLength(1);
      return keys[0] as string;
    };
    return { store, onlyRecordKey };
  }
  const newStore = (options: Partial<IdempotencyStoreOptions> = {}) => storeWithPrefix(options).store;

  afterAll(async () => {
    const keys = await keysUnder(redis, filePrefix);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  async function claim(store: IdempotencyStore, principal: string, key: string, body = CREATE_BODY) {
    const begun = await store.begin(principal, key, body);
    if (begun.kind !== 'new') throw new Error(`expected a new claim, got ${begun.kind}`);
    return begun.lease;
  }

  it('replays the stored response to the same principal, key and body', async () => {
    const store = newStore();
    const lease = await claim(store, 'user:u1', 'key-1');
    await lease.complete(CREATED);
    expect(await store.begin('user:u1', 'key-1', CREATE_BODY)).toEqual({ kind: 'replay', response: CREATED });
  });

  it('refuses the same key with a different body with IDEMPOTENCY_KEY_REUSED', async () => {
    const store = newStore();
    await (await claim(store, 'user:u1', 'key-1')).complete(CREATED);
    await expect(store.begin('user:u1', 'key-1', OTHER_BODY)).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_REUSED', httpStatus: 422 });
  });

  it('lets only one of two concurrent requests with the same key run; the other gets IDEMPOTENCY_REQUEST_IN_FLIGHT', async () => {
    const store = newStore();
    const results = await Promise.allSettled([store.begin('user:u1', 'key-1', CREATE_BODY), store.begin('user:u1', 'key-1', CREATE_BODY)]);
    expect(results.filter((r) => r.status === 'fulfilled' && r.value.kind === 'new')).toHaveLength(1);
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused).toEqual([{ status: 'rejected', reason: expect.objectContaining({ code: 'IDEMPOTENCY_REQUEST_IN_FLIGHT', httpStatus: 409 }) }]);
  });

  it('runs the request again after the first one abandoned its key', async () => {
    const store = newStore();
    await (await claim(store, 'user:u1', 'key-1')).abandon();
    expect((await store.begin('user:u1', 'key-1', CREATE_BODY)).kind).toBe('new');
  });

  it('never stores a response that showed a secret and refuses its replay with IDEMPOTENCY_SECRET_ALREADY_SHOWN', async () => {
    const { store, onlyRecordKey } = storeWithPrefix();
    await (await claim(store, 'user:u1', 'key-1')).complete({ secretShown: true });
    expect(await redis.hkeys(await onlyRecordKey())).not.toContain('response');
    await expect(store.begin('user:u1', 'key-1', CREATE_BODY)).rejects.toMatchObject({ code: 'IDEMPOTENCY_SECRET_ALREADY_SHOWN' });
  });

  it("never replays one principal's response to another principal using the same key", async () => {
    const store = newStore();
    await (await claim(store, 'user:u1', 'shared-key')).complete(CREATED);
    expect((await store.begin('user:u2', 'shared-key', CREATE_BODY)).kind).toBe('new');
  });

  it('keeps a claim for inFlightTtlSeconds and a completed response for ttlSeconds', async () => {
    const { store, onlyRecordKey } = storeWithPrefix({ ttlSeconds: 86_400, inFlightTtlSeconds: 30 });
    const lease = await claim(store, 'user:u1', 'key-1');
    const key = await onlyRecordKey();
    expect(await redis.ttl(key)).toBeGreaterThanOrEqual(29);
    expect(await redis.ttl(key)).toBeLessThanOrEqual(30);
    await lease.complete(CREATED);
    expect(await redis.ttl(key)).toBeGreaterThanOrEqual(86_399);
    expect(await redis.ttl(key)).toBeLessThanOrEqual(86_400);
  });

  it('forgets a completed response once its ttl has passed', async () => {
    const store = newStore({ ttlSeconds: 1 });
    await (await claim(store, 'user:u1', 'key-1')).complete(CREATED);
    const deadline = Date.now() + 5_000;
    let begun = await store.begin('user:u1', 'key-1', CREATE_BODY);
    while (begun.kind === 'replay' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      begun = await store.begin('user:u1', 'key-1', CREATE_BODY);
    }
    expect(begun.kind).toBe('new');
  });

  it('lets a lease whose claim expired neither store into nor free the claim of the request after it', async () => {
    const { store, onlyRecordKey } = storeWithPrefix();
    const stale = await claim(store, 'user:u1', 'key-1');
    await redis.del(await onlyRecordKey()); // as if its inFlightTtlSeconds had passed
    await claim(store, 'user:u1', 'key-1');
    await stale.complete(CREATED);
    await stale.abandon();
    await expect(store.begin('user:u1', 'key-1', CREATE_BODY)).rejects.toMatchObject({ code: 'IDEMPOTENCY_REQUEST_IN_FLIGHT' });
    expect(logs.lines().filter((line) => line.msg === 'idempotency claim lost before the response was stored')).toEqual([
      expect.objectContaining({ level: 'warn' }),
    ]);
  });

  it('refuses an invalid key with IDEMPOTENCY_KEY_INVALID before touching Redis', async () => {
    await expect(newStore().begin('user:u1', '', CREATE_BODY)).rejects.toMatchObject({ code: 'IDEMPOTENCY_KEY_INVALID', httpStatus: 400 });
  });
});

describe('validateIdempotencyKey', () => {
  it('gives undefined when the request has no key', () => {
    expect(validateIdempotencyKey(undefined)).toBeUndefined();
    expect(validateIdempotencyKey([])).toBeUndefined();
  });

  it('accepts 1 to 255 printable ASCII characters', () => {
    expect(validateIdempotencyKey('a')).toBe('a');
    expect(validateIdempotencyKey(['8e0f-4b1c ~!'])).toBe('8e0f-4b1c ~!');
    expect(validateIdempotencyKey('k'.repeat(255))).toBe('k'.repeat(255));
  });

  it.each([
    ['empty', ''],
    ['256 characters', 'k'.repeat(256)],
    ['non-ASCII', 'clé'],
    ['a control character', 'a\nb'],
  ])('refuses a key that is %s', (_, raw) => {
    expect(() => validateIdempotencyKey(raw)).toThrow(expect.objectContaining({ code: 'IDEMPOTENCY_KEY_INVALID' }));
  });

  it('refuses a key sent twice', () => {
    expect(() => validateIdempotencyKey(['a', 'b'])).toThrow(expect.objectContaining({ code: 'IDEMPOTENCY_KEY_INVALID' }));
  });
});

describe('IdempotencyStore when Redis fails', () => {
  let server: PrivateRedis;
  let redis: Redis;
  let store: IdempotencyStore;

  beforeAll(async () => {
    server = await startPrivateRedis();
    redis = await connectToPrivateRedis(server);
    store = new IdempotencyStore({
      redis,
      keyPrefix: 'test:',
      ttlSeconds: 86_400,
      inFlightTtlSeconds: 30,
      logger: createLogger({ service: 'idempotency-test', level: 'silent' }),
    });
  });

  afterAll(async () => {
    // Closing a client whose server is gone leaves ioredis waiting out its disconnect timer.
    await server.start();
    await untilRedisReady(redis);
    await redis.quit();
    await server.stop();
  });

  it('fails closed: a lease cannot store its response while Redis is down', async () => {
    const begun = await store.begin('user:u1', 'key-1', CREATE_BODY);
    if (begun.kind !== 'new') throw new Error('expected a new claim');
    await server.stop();
    await expect(begun.lease.complete(CREATED)).rejects.toMatchObject({ code: 'IDEMPOTENCY_UNAVAILABLE', cause: expect.any(Error) });
  });

  it('fails closed: begin refuses with IDEMPOTENCY_UNAVAILABLE while Redis is down', async () => {
    await server.stop();
    await expect(store.begin('user:u1', 'key-2', CREATE_BODY)).rejects.toMatchObject({
      code: 'IDEMPOTENCY_UNAVAILABLE',
      httpStatus: 503,
      cause: expect.any(Error),
    });
  });
});

