import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { streamDeclarations } from '@aifactory/contracts';
import { ServiceMetrics } from '@aifactory/telemetry';
import { createTestDatabase, startPrivateNats, TEST_ADMIN_URL, type PrivateNats, type TestDatabase } from '@aifactory/testing';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { ensureStreams, OutboxRelay, replayFailedEvents, writeOutboxEvent, type OutboxRelayOptions } from '../src/index.js';
import { capturedLogger, connectTo, counterValue, gaugeValue, organizationEvent, waitFor } from './support.js';

const SCHEMA = 'iam';
const REPLAY_CLI = fileURLToPath(new URL('../dist/cli/outbox-replay.js', import.meta.url));

let db: TestDatabase;
let nats: PrivateNats;
let nc: NatsConnection;
let jsm: JetStreamManager;
let admin: pg.Client;
let pool: pg.Pool;
let relay: OutboxRelay | undefined;

beforeAll(async () => {
  [db, nats] = await Promise.all([createTestDatabase({ subgraphs: ['iam'] }), startPrivateNats()]);
  nc = await connectTo(nats);
  jsm = await jetstreamManager(nc);
  await ensureStreams(jsm, streamDeclarations());
  admin = await db.admin();
  pool = new pg.Pool({ connectionString: db.appUrl(SCHEMA), max: 3 });
});

afterEach(async () => {
  await relay?.stop();
  relay = undefined;
});

afterAll(async () => {
  await pool?.end();
  await nc?.close();
  await nats?.dispose();
  await db?.drop();
});

async function startRelay(options: Partial<OutboxRelayOptions> = {}): Promise<OutboxRelay> {
  relay = new OutboxRelay({ pool, schema: SCHEMA, nc, logger: capturedLogger().logger, pollIntervalMs: 100, pollJitterMs: 10, ...options });
  await relay.start();
  return relay;
}

async function writeEvents(count: number, options: { subjectPrefix?: string } = {}): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 1) {
    ids.push((await writeOutboxEvent(pool, organizationEvent(randomUUID(), 1), { schema: SCHEMA, ...options })).id);
  }
  return ids;
}

async function rowsOf(ids: string[]): Promise<{ id: string; status: string; attempts: number; last_error: string | null }[]> {
  const { rows } = await admin.query('SELECT id, status::text, attempts, last_error FROM iam.outbox_events WHERE id = ANY($1::uuid[])', [ids]);
  return rows;
}

async function allPublished(ids: string[]): Promise<boolean> {
  return (await rowsOf(ids)).every((row) => row.status === 'published');
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a NATS outage', () => {
  it('pauses the relay without counting attempts, and everything goes out once NATS is back', async () => {
    const metrics = new ServiceMetrics('relay-outage');
    const running = await startRelay({ metrics });
    const messagesBefore = (await jsm.streams.info('PLATFORM_IAM')).state.messages;
    await nats.stop();

    const ids = await writeEvents(20);
    await waitFor(async () => running.isPaused, 'the relay to pause');
    // Several poll periods pass while paused: still nothing is counted.
    await sleep(600);
    expect((await rowsOf(ids)).map(({ status, attempts }) => ({ status, attempts }))).toEqual(
      ids.map(() => ({ status: 'pending', attempts: 0 })),
    );
    expect(await gaugeValue(metrics, 'aif_outbox_pending_events')).toBe(20);
    expect(await gaugeValue(metrics, 'aif_outbox_oldest_pending_age_seconds')).toBeGreaterThan(0.5);

    await nats.start();
    await waitFor(() => allPublished(ids), 'every row published after the restart');
    expect(running.isPaused).toBe(false);
    expect((await rowsOf(ids)).every((row) => row.attempts === 0)).toBe(true);
    expect((await jsm.streams.info('PLATFORM_IAM')).state.messages).toBe(messagesBefore + 20);
    expect(await counterValue(metrics, 'aif_outbox_published_total')).toBe(20);
    expect(await gaugeValue(metrics, 'aif_outbox_pending_events')).toBe(0);
    expect(await gaugeValue(metrics, 'aif_outbox_oldest_pending_age_seconds')).toBe(0);
  });

  it('treats a broker that stops answering (publish timeouts) as an outage too', async () => {
    const running = await startRelay({ publishTimeoutMs: 300 });
    const messagesBefore = (await jsm.streams.info('PLATFORM_IAM')).state.messages;
    nats.freeze();
    try {
      const ids = await writeEvents(5);
      await waitFor(async () => running.isPaused, 'the relay to pause on timeouts');
      expect((await rowsOf(ids)).every((row) => row.status === 'pending' && row.attempts === 0)).toBe(true);

      nats.thaw();
      await waitFor(() => allPublished(ids), 'every row published once the broker answers');
      expect((await rowsOf(ids)).every((row) => row.attempts === 0)).toBe(true);
    } finally {
      nats.thaw();
    }
    // Publishes that timed out may still have landed; the republish carried the same msg id.
    expect((await jsm.streams.info('PLATFORM_IAM')).state.messages).toBe(messagesBefore + 5);
  });
});

describe('a message JetStream refuses', () => {
  it('is failed after 10 tries, and a replay sends it once a stream covers its subject', async () => {
    const metrics = new ServiceMetrics('relay-refusals');
    const running = await startRelay({ retryBaseMs: 5, retryMaxMs: 20, pollIntervalMs: 30, metrics });
    // The prefix puts these subjects outside every stream: JetStream answers "no responders".
    const [first, second] = (await writeEvents(2, { subjectPrefix: 'orphan' })) as [string, string];

    await waitFor(async () => (await rowsOf([first, second])).every((row) => row.status === 'failed'), 'both rows failed');
    for (const row of await rowsOf([first, second])) {
      expect(row.attempts).toBe(10);
      expect(row.last_error).toMatch(/no stream accepts this subject/);
    }
    expect(running.isPaused).toBe(false);
    expect(await counterValue(metrics, 'aif_outbox_publish_rejections_total')).toBe(20);
    expect((await metrics.render()).body).toContain('aif_outbox_failed_events{schema="iam",service="relay-refusals"} 2');
    await sleep(200);
    expect((await rowsOf([first])).map((row) => row.attempts)).toEqual([10]);

    await ensureStreams(jsm, streamDeclarations({ subjectPrefix: 'orphan' }));
    expect(await replayFailedEvents(pool, SCHEMA, { id: first })).toEqual([first]);
    await waitFor(() => allPublished([first]), 'the replayed row published');
    expect((await rowsOf([second]))[0]?.status).toBe('failed');

    const { stdout, stderr } = await promisify(execFile)(process.execPath, [REPLAY_CLI, '--subgraph', SCHEMA, '--id', second], {
      env: { ...process.env, NODE_OPTIONS: '', DATABASE_ADMIN_URL: TEST_ADMIN_URL, DATABASE_NAME: db.layout.database, LOG_LEVEL: 'info' },
    });
    expect(stderr).toBe('');
    expect(JSON.parse(stdout.trim())).toMatchObject({ msg: 'failed outbox events requeued', subgraph: SCHEMA, requeued: 1, ids: [second] });
    await waitFor(() => allPublished([second]), 'the row replayed by the CLI published');
    expect((await jsm.streams.info('ORPHAN_PLATFORM_IAM')).state.messages).toBe(2);
  });

  it('outbox:replay refuses to run without a subgraph', async () => {
    const run = promisify(execFile)(process.execPath, [REPLAY_CLI], {
      env: { ...process.env, NODE_OPTIONS: '', DATABASE_NAME: db.layout.database },
    });
    await expect(run).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('usage: npm run outbox:replay') });
  });
});
