import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { TEST_NATS_URL, TEST_REDIS_URL, type CapturedLogs, type TestDatabase } from '@aifactory/testing';

/** One place a secret could have been written to, as text. */
export interface Haystack {
  source: string;
  text: string;
}

const run = promisify(execFile);

/** The whole test database as `pg_dump` writes it: every schema, every row. */
export async function databaseDump(db: TestDatabase): Promise<Haystack[]> {
  const { stdout } = await run('pg_dump', ['--data-only', '--no-owner', db.adminUrl], { maxBuffer: 512 * 1024 * 1024 });
  return [{ source: 'postgres (pg_dump)', text: stdout }];
}

/**
 * Every message still held by this run's streams and KV buckets (their
 * names carry the run's prefix), read one by one by sequence, so nothing a
 * consumer has not read yet is missed.
 */
export async function jetStreamDump(subjectPrefix: string, natsUrl = TEST_NATS_URL): Promise<Haystack[]> {
  const nc = await connect({ servers: natsUrl, name: 'aifactory-secret-scan' });
  try {
    const jsm = await jetstreamManager(nc);
    const prefix = `${subjectPrefix.toUpperCase()}_`;
    const found: Haystack[] = [];
    for await (const info of jsm.streams.list()) {
      const name = info.config.name;
      if (!name.startsWith(prefix) && !name.startsWith(`KV_${prefix}`)) continue;
      const parts: string[] = [];
      for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
        const message = await jsm.streams.getMessage(name, { seq }).catch(() => null);
        if (message === null) continue;
        parts.push(`${message.subject} ${message.string()}`);
        if (message.header) for (const [key, values] of message.header) parts.push(`${key}: ${values.join(',')}`);
      }
      found.push({ source: `jetstream ${name}`, text: parts.join('\n') });
    }
    return found;
  } finally {
    await nc.close();
  }
}

/** Every key in Redis (SCAN over the whole keyspace, BullMQ's included), with its value whatever its type. */
export async function redisDump(url = TEST_REDIS_URL): Promise<Haystack[]> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    const parts: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) parts.push(`${key} ${await redisValue(redis, key)}`);
    } while (cursor !== '0');
    return [{ source: 'redis (SCAN)', text: parts.join('\n') }];
  } finally {
    redis.disconnect();
  }
}

async function redisValue(redis: Redis, key: string): Promise<string> {
  switch (await redis.type(key)) {
    case 'string':
      return (await redis.get(key)) ?? '';
    case 'hash':
      return JSON.stringify(await redis.hgetall(key));
    case 'list':
      return JSON.stringify(await redis.lrange(key, 0, -1));
    case 'set':
      return JSON.stringify(await redis.smembers(key));
    case 'zset':
      return JSON.stringify(await redis.zrange(key, 0, -1, 'WITHSCORES'));
    case 'stream':
      return JSON.stringify(await redis.xrange(key, '-', '+'));
    default:
      return '';
  }
}

export function logDump(logs: CapturedLogs): Haystack[] {
  return [{ source: 'logs (every process of the platform)', text: logs.raw().join('\n') }];
}

/** Each place that holds the secret or any `pieceLength`-character piece of it, with the piece found. */
export function secretPieces(haystacks: Haystack[], secret: string, pieceLength = 16): Array<{ source: string; piece: string }> {
  const pieces = new Set<string>();
  for (let start = 0; start + pieceLength <= secret.length; start++) pieces.add(secret.slice(start, start + pieceLength));
  const hits: Array<{ source: string; piece: string }> = [];
  for (const haystack of haystacks) {
    for (const piece of pieces) {
      if (haystack.text.includes(piece)) {
        hits.push({ source: haystack.source, piece });
        break;
      }
    }
  }
  return hits;
}
