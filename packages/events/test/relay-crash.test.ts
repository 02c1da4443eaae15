import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { streamDeclarations } from '@aifactory/contracts';
import { ServiceMetrics } from '@aifactory/telemetry';
import { createTestDatabase, startPrivateNats, type PrivateNats, type TestDatabase } from '@aifactory/testing';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { ensureStreams, OutboxRelay, writeOutboxEvent } from '../src/index.js';
import { capturedLogger, connectTo, counterValue, organizationEvent, waitFor } from './support.js';

const SCHEMA = 'iam';
const STREAM = 'PLATFORM_IAM';
const CHILD_ENTRY = fileURLToPath(new URL('./fixtures/relay-child.mjs', import.meta.url));
const CHILD_APPLICATION_NAME = `relay-child-${process.pid}`;
/** The advisory lock the stalling trigger waits on while the test holds it. */
const STALL_LOCK = 727_001;

let db: TestDatabase;
let nats: PrivateNats;
let nc: NatsConnection;
let jsm: JetStreamManager;
let admin: pg.Client;
let pool: pg.Pool;
let child: ChildProcess | undefined;
const killChild = () => child?.kill('SIGKILL');

beforeAll(async () => {
  process.once('exit', killChild);
  [db, nats] = await Promise.all([createTestDatabase({ subgraphs: ['iam'] }), startPrivateNats()]);
  nc = await connectTo(nats);
  jsm = await jetstreamManager(nc);
  await ensureStreams(jsm, streamDeclarations());
  admin = await db.admin();
  pool = new pg.Pool({ connectionString: db.appUrl(SCHEMA), max: 2 });
  // Marking a row published waits until the test lets it: the relay is held between publish and commit.
  await admin.query(`
    CREATE FUNCTION iam.stall_publish() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM pg_advisory_xact_lock_shared(${STALL_LOCK});
      RETURN NEW;
    END $$;
    CREATE TRIGGER stall_publish BEFORE UPDATE ON iam.outbox_events
      FOR EACH ROW WHEN (NEW.status = 'published') EXECUTE FUNCTION iam.stall_publish();
  `);
});

afterAll(async () => {
  killChild();
  process.removeListener('exit', killChild);
  await pool?.end();
  await nc?.close();
  await nats?.dispose();
  await db?.drop();
});

function startChildRelay(): Promise<ChildProcess> {
  const started = spawn(process.execPath, [CHILD_ENTRY], {
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      DATABASE_URL: db.appUrl(SCHEMA),
      NATS_URL: nats.url,
      OUTBOX_SCHEMA: SCHEMA,
      APPLICATION_NAME: CHILD_APPLICATION_NAME,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child = started;
  let output = '';
  return new Promise((resolve, reject) => {
    started.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.includes('relay started')) resolve(started);
    });
    started.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    started.once('exit', (code) => reject(new Error(`child relay exited (${code}) before starting: ${output}`)));
  });
}

describe('a relay killed between publish and commit', () => {
  it('loses nothing: the next relay publishes the row again and JetStream absorbs the copy', async () => {
    await admin.query('SELECT pg_advisory_lock($1)', [STALL_LOCK]);
    const relay = await startChildRelay();
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const event = await writeOutboxEvent(pool, organizationEvent(randomUUID(), 1, { traceparent }), { schema: SCHEMA });

    // Published, but its row is not marked: the child is stuck in the UPDATE, its transaction open.
    await waitFor(async () => (await jsm.streams.info(STREAM)).state.messages === 1, 'the message in the stream');
    const exited = new Promise((resolve) => relay.once('exit', resolve));
    relay.kill('SIGKILL');
    await exited;
    // Postgres notices a dead client only when it next talks to it (or by keepalive); end its sessions now.
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [CHILD_APPLICATION_NAME]);
    await waitFor(
      async () =>
        (await admin.query('SELECT 1 FROM pg_stat_activity WHERE application_name = $1', [CHILD_APPLICATION_NAME])).rowCount === 0,
      'the dead relay sessions gone',
    );
    await admin.query('SELECT pg_advisory_unlock($1)', [STALL_LOCK]);
    const pending = await admin.query('SELECT status FROM iam.outbox_events WHERE id = $1', [event.id]);
    expect(pending.rows).toEqual([{ status: 'pending' }]);

    const metrics = new ServiceMetrics('relay-after-crash');
    const successor = new OutboxRelay({ pool, schema: SCHEMA, nc, logger: capturedLogger().logger, metrics, pollIntervalMs: 100 });
    await successor.start();
    try {
      await waitFor(
        async () => (await admin.query(`SELECT 1 FROM iam.outbox_events WHERE id = $1 AND status = 'published'`, [event.id])).rowCount === 1,
        'the row published',
      );
    } finally {
      await successor.stop();
    }
    expect(await counterValue(metrics, 'aif_outbox_duplicate_acks_total')).toBe(1);
    const info = await jsm.streams.info(STREAM);
    expect(info.state.messages).toBe(1);
    const stored = await jsm.streams.getMessage(STREAM, { seq: 1 });
    expect(stored?.json()).toEqual(event);
    expect(stored?.header.get('Nats-Msg-Id')).toBe(event.id);
    expect(stored?.header.get('X-Correlation-Id')).toBe(event.correlationId);
    expect(stored?.header.get('traceparent')).toBe(traceparent);
  });
});
