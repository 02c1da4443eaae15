import { randomUUID } from 'node:crypto';
import { streamDeclarations } from '@aifactory/contracts';
import { createTestDatabase, startPrivateNats, type PrivateNats, type TestDatabase } from '@aifactory/testing';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { ServiceMetrics } from '@aifactory/telemetry';
import { ensureStreams, OutboxRelay, writeOutboxEvent } from '../src/index.js';
import { capturedLogger, connectTo, counterValue, organizationEvent, readStream, waitFor } from './support.js';

const SCHEMA = 'iam';
const STREAM = 'PLATFORM_IAM';
const ORGANIZATIONS = 100;
const VERSIONS_PER_ORGANIZATION = 10;
const EVENTS = ORGANIZATIONS * VERSIONS_PER_ORGANIZATION;
/** Short, so the test can wait it out; production streams keep 2 minutes. */
const DUPLICATE_WINDOW_MS = 1_000;

let db: TestDatabase;
let nats: PrivateNats;
let nc: NatsConnection;
let jsm: JetStreamManager;
let admin: pg.Client;
const pools: pg.Pool[] = [];
const relays: OutboxRelay[] = [];

beforeAll(async () => {
  [db, nats] = await Promise.all([createTestDatabase({ subgraphs: ['iam'] }), startPrivateNats()]);
  nc = await connectTo(nats);
  jsm = await jetstreamManager(nc);
  await ensureStreams(
    jsm,
    streamDeclarations().map((stream) => ({ ...stream, duplicateWindowMs: DUPLICATE_WINDOW_MS })),
  );
  admin = await db.admin();
});

afterAll(async () => {
  await Promise.all(relays.map((relay) => relay.stop()));
  await Promise.all(pools.map((pool) => pool.end()));
  await nc?.close();
  await nats?.dispose();
  await db?.drop();
});

function appPool(max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: db.appUrl(SCHEMA), max });
  pools.push(pool);
  return pool;
}

async function publishedCount(): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM iam.outbox_events WHERE status = 'published'`);
  return rows[0]?.n ?? 0;
}

describe('two relays over one outbox', () => {
  it('deliver 1,000 events written by concurrent transactions to JetStream exactly once each', async () => {
    const metrics = [new ServiceMetrics('relay-a'), new ServiceMetrics('relay-b')];
    for (const registry of metrics) {
      const relay = new OutboxRelay({ pool: appPool(2), schema: SCHEMA, nc, logger: capturedLogger().logger, metrics: registry });
      relays.push(relay);
      await relay.start();
    }

    // 100 transactions, four at a time, each telling one organization's story (versions 1..10).
    const writers = appPool(4);
    const organizations = Array.from({ length: ORGANIZATIONS }, () => randomUUID());
    let next = 0;
    const writeStories = async () => {
      while (next < organizations.length) {
        const organizationId = organizations[next++]!;
        const client = await writers.connect();
        try {
          await client.query('BEGIN');
          for (let version = 1; version <= VERSIONS_PER_ORGANIZATION; version += 1) {
            await writeOutboxEvent(client, organizationEvent(organizationId, version));
          }
          await client.query('COMMIT');
        } finally {
          client.release();
        }
      }
    };
    await Promise.all(Array.from({ length: 4 }, writeStories));

    await waitFor(async () => (await publishedCount()) === EVENTS, 'every row published', { timeoutMs: 30_000 });
    const info = await jsm.streams.info(STREAM);
    expect(info.state.messages).toBe(EVENTS);
    const delivered = await readStream(jetstream(nc), STREAM, EVENTS);
    expect(delivered.total).toBe(EVENTS);
    expect(delivered.ids.size).toBe(EVENTS);
    const { rows } = await admin.query<{ id: string }>('SELECT id FROM iam.outbox_events');
    expect(new Set(rows.map((row) => row.id))).toEqual(delivered.ids);
    // Exactly once by claiming, not by luck: no row was published twice and absorbed by the duplicate window.
    const acks = await Promise.all(metrics.map((registry) => counterValue(registry, 'aif_outbox_published_total')));
    const duplicates = await Promise.all(metrics.map((registry) => counterValue(registry, 'aif_outbox_duplicate_acks_total')));
    expect(acks[0]! + acks[1]!).toBe(EVENTS);
    expect(duplicates).toEqual([0, 0]);
  });

  it('republishes the same events as new messages once the duplicate window has passed, so consumers must dedupe', async () => {
    const before = (await jsm.streams.info(STREAM)).state.messages;
    expect(before).toBe(EVENTS);
    // Wait out the window after the last publish, then put 100 events back as a crashed relay would leave them.
    await new Promise((resolve) => setTimeout(resolve, DUPLICATE_WINDOW_MS * 2.5));
    await admin.query(
      `UPDATE iam.outbox_events SET status = 'pending', published_at = NULL
        WHERE id IN (SELECT id FROM iam.outbox_events ORDER BY occurred_at LIMIT 100)`,
    );
    await admin.query(`SELECT pg_notify('outbox_iam', '')`);

    await waitFor(async () => (await publishedCount()) === EVENTS, 'the requeued rows published again');
    const after = await jsm.streams.info(STREAM);
    expect(after.state.messages).toBe(EVENTS + 100);
    const delivered = await readStream(jetstream(nc), STREAM, EVENTS + 100);
    expect(delivered.total).toBe(EVENTS + 100);
    expect(delivered.ids.size).toBe(EVENTS);
  });
});
