import { randomUUID } from 'node:crypto';
import { ManualClock } from '@aifactory/clock';
import { createLogger } from '@aifactory/logging';
import { captureLogs, connectToPrivateRedis, startPrivateRedis, untilRedisReady, TEST_REDIS_URL, type PrivateRedis } from '@aifactory/testing';
import { Redis } from 'ioredis';
import { RateLimiter, rateLimitHeaders, type RateLimitOutcome } from './rate-limiter.js';

/** 12:00:00 UTC, the start of a 60 s window. */
const WINDOW_START_MS = Date.UTC(2026, 0, 1, 12, 0, 0);
const WINDOW_START_S = WINDOW_START_MS / 1000;
const perMinute = (limit: number) => ({ limit, windowSeconds: 60 });

async function deleteKeys(redis: Redis, keyPrefix: string): Promise<void> {
  for await (const keys of redis.scanStream({ match: `${keyPrefix}*`, count: 500 })) {
    if ((keys as string[]).length > 0) await redis.del(...(keys as string[]));
  }
}

describe('RateLimiter', () => {
  const redis = new Redis(TEST_REDIS_URL);
  const keyPrefix = `test:rate-limiter:${randomUUID()}:`;
  const logger = createLogger({ service: 'rate-limiter-test', level: 'silent' });
  const limiter = (clock = new ManualClock(WINDOW_START_MS)) => new RateLimiter({ redis, keyPrefix, clock, logger });

  afterAll(async () => {
    await deleteKeys(redis, keyPrefix);
    await redis.quit();
  });

  it('lets requests under the limit through and counts Remaining down', async () => {
    const rl = limiter();
    const subject = randomUUID();
    const first = await rl.check(subject, 'graphql:mutation', perMinute(3));
    const second = await rl.check(subject, 'graphql:mutation', perMinute(3));
    expect(first).toEqual({ outcome: 'allowed', limit: 3, remaining: 2, resetAt: WINDOW_START_S + 60, retryAfterSeconds: 0 });
    expect(second).toEqual({ outcome: 'allowed', limit: 3, remaining: 1, resetAt: WINDOW_START_S + 60, retryAfterSeconds: 0 });
  });

  it('limits the request after the limit and says to retry when the window ends', async () => {
    const rl = limiter(new ManualClock(WINDOW_START_MS + 15_000));
    const subject = randomUUID();
    await rl.check(subject, 'graphql:mutation', perMinute(2));
    await rl.check(subject, 'graphql:mutation', perMinute(2));
    const third = await rl.check(subject, 'graphql:mutation', perMinute(2));
    expect(third).toEqual({ outcome: 'limited', limit: 2, remaining: 0, resetAt: WINDOW_START_S + 60, retryAfterSeconds: 45 });
  });

  it('aligns windows to the clock, so a new window starts on the minute whenever the first request came', async () => {
    const clock = new ManualClock(WINDOW_START_MS + 59_000);
    const rl = limiter(clock);
    const subject = randomUUID();
    expect((await rl.check(subject, 'rest:export', perMinute(1))).outcome).toBe('allowed');
    expect(await rl.check(subject, 'rest:export', perMinute(1))).toMatchObject({ outcome: 'limited', retryAfterSeconds: 1 });
    clock.advance(1_000);
    expect(await rl.check(subject, 'rest:export', perMinute(1))).toEqual({
      outcome: 'allowed',
      limit: 1,
      remaining: 0,
      resetAt: WINDOW_START_S + 120,
      retryAfterSeconds: 0,
    });
  });

  it('lets exactly 7 of 50 concurrent requests through a limit of 7', async () => {
    const rl = limiter();
    const subject = randomUUID();
    const decisions = await Promise.all(Array.from({ length: 50 }, () => rl.check(subject, 'graphql:mutation', perMinute(7))));
    expect(decisions.filter((d) => d.outcome === 'allowed')).toHaveLength(7);
    expect(decisions.filter((d) => d.outcome === 'limited')).toHaveLength(43);
    expect(decisions.map((d) => d.remaining).sort((a, b) => a - b)).toEqual([...Array<number>(44).fill(0), 1, 2, 3, 4, 5, 6]);
  });

  it('counts each subject and each policy on its own', async () => {
    const rl = limiter();
    const [alice, bob] = [randomUUID(), randomUUID()];
    await rl.check(alice, 'graphql:mutation', perMinute(1));
    expect((await rl.check(alice, 'graphql:mutation', perMinute(1))).outcome).toBe('limited');
    expect((await rl.check(bob, 'graphql:mutation', perMinute(1))).outcome).toBe('allowed');
    expect((await rl.check(alice, 'graphql:query', perMinute(1))).outcome).toBe('allowed');
  });

  it('keeps policy and subject apart even when they contain the key separator', async () => {
    const rl = limiter();
    const user = randomUUID();
    await rl.check(`createProject:${user}`, 'graphql', perMinute(1));
    expect((await rl.check(user, 'graphql:createProject', perMinute(1))).outcome).toBe('allowed');
  });

  it('reports every decision to onDecision with its policy', async () => {
    const seen: Array<[RateLimitOutcome, string]> = [];
    const rl = new RateLimiter({
      redis,
      keyPrefix,
      clock: new ManualClock(WINDOW_START_MS),
      logger,
      onDecision: (outcome, policy) => seen.push([outcome, policy]),
    });
    const subject = randomUUID();
    await rl.check(subject, 'rest:export', perMinute(1));
    await rl.check(subject, 'rest:export', perMinute(1));
    expect(seen).toEqual([
      ['allowed', 'rest:export'],
      ['limited', 'rest:export'],
    ]);
  });
});

describe('rateLimitHeaders', () => {
  it('gives limit, remaining and reset, and no Retry-After, while allowed', () => {
    expect(rateLimitHeaders({ outcome: 'allowed', limit: 10, remaining: 4, resetAt: 1767268860, retryAfterSeconds: 0 })).toEqual({
      'X-RateLimit-Limit': '10',
      'X-RateLimit-Remaining': '4',
      'X-RateLimit-Reset': '1767268860',
    });
  });

  it('adds Retry-After when limited', () => {
    expect(rateLimitHeaders({ outcome: 'limited', limit: 10, remaining: 0, resetAt: 1767268860, retryAfterSeconds: 45 })).toEqual({
      'X-RateLimit-Limit': '10',
      'X-RateLimit-Remaining': '0',
      'X-RateLimit-Reset': '1767268860',
      'Retry-After': '45',
    });
  });
});

describe('RateLimiter when Redis fails', () => {
  let server: PrivateRedis;
  let redis: Redis;
  const logs = captureLogs();
  const outcomes: RateLimitOutcome[] = [];
  let rl: RateLimiter;

  beforeAll(async () => {
    server = await startPrivateRedis();
    redis = await connectToPrivateRedis(server);
    rl = new RateLimiter({
      redis,
      keyPrefix: 'test:',
      clock: new ManualClock(WINDOW_START_MS),
      logger: createLogger({ service: 'rate-limiter-test', destination: logs.destination }),
      onDecision: (outcome) => outcomes.push(outcome),
    });
  });

  afterAll(async () => {
    // Closing a client whose server is gone leaves ioredis waiting out its disconnect timer.
    await server.start();
    await untilRedisReady(redis);
    await redis.quit();
    await server.stop();
  });

  it('fails open with the full limit remaining, counts it and writes a warn line without the subject', async () => {
    const subject = `user-${randomUUID()}`;
    await server.stop();
    const decision = await rl.check(subject, 'graphql:mutation', perMinute(5));
    expect(decision).toEqual({ outcome: 'fail_open', limit: 5, remaining: 5, resetAt: WINDOW_START_S + 60, retryAfterSeconds: 0 });
    expect(outcomes.at(-1)).toBe('fail_open');
    const warned = logs.lines().filter((line) => line.msg === 'rate limiter failed open');
    expect(warned).toEqual([expect.objectContaining({ level: 'warn', policy: 'graphql:mutation', err: expect.objectContaining({ message: expect.any(String) }) })]);
    expect(logs.raw().join('\n')).not.toContain(subject);
  });

  it('counts again once Redis is back', async () => {
    await server.stop();
    expect((await rl.check('user-1', 'graphql:mutation', perMinute(5))).outcome).toBe('fail_open');
    await server.start();
    await untilRedisReady(redis);
    expect(await rl.check('user-1', 'graphql:mutation', perMinute(5))).toMatchObject({ outcome: 'allowed', remaining: 4 });
    expect(await rl.check('user-1', 'graphql:mutation', perMinute(5))).toMatchObject({ outcome: 'allowed', remaining: 3 });
  });
});

