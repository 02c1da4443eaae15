import { randomUUID } from 'node:crypto';
import { streamDeclarations } from '@aifactory/contracts';
import { createTestDatabase, startPrivateNats, type PrivateNats, type TestDatabase } from '@aifactory/testing';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { ensureStreams, OutboxRelay, writeOutboxEvent } from '../src/index.js';
import { capturedLogger, connectTo, organizationEvent } from './support.js';

const SCHEMA = 'iam';
const PREFIX = 'run1';

let db: TestDatabase;
let nats: PrivateNats;
let nc: NatsConnection;
let jsm: JetStreamManager;
let admin: pg.Client;
let pool: pg.Pool;

beforeAll(async () => {
  [db, nats] = await Promise.all([createTestDatabase({ subgraphs: ['iam'] }), startPrivateNats()]);
  nc = await connectTo(nats);
  jsm = await jetstreamManager(nc);
  // A private server holding both: the real streams (a dev stack's) and this run's prefixed ones.
  await ensureStreams(jsm, [...streamDeclarations(), ...streamDeclarations({ subjectPrefix: PREFIX })]);
  admin = await db.admin();
  pool = new pg.Pool({ connectionString: db.appUrl(SCHEMA), max: 2 });
});

afterAll(async () => {
  await pool?.end();
  await nc?.close();
  await nats?.dispose();
  await db?.drop();
});

describe('a relay with a subject prefix', () => {
  it('publishes rows under its prefix and refuses one written without it, so nothing reaches the real streams', async () => {
    const organizationId = randomUUID();
    await writeOutboxEvent(pool, organizationEvent(organizationId, 1), { subjectPrefix: PREFIX });
    await writeOutboxEvent(pool, organizationEvent(organizationId, 2));
    const relay = new OutboxRelay({ pool, schema: SCHEMA, nc, logger: capturedLogger().logger, subjectPrefix: PREFIX });

    const cycle = await relay.relayOnce();

    expect(cycle).toMatchObject({ claimed: 2, published: 1, rejected: 1, outage: false });
    expect((await jsm.streams.info(`${PREFIX.toUpperCase()}_PLATFORM_IAM`)).state.messages).toBe(1);
    expect((await jsm.streams.info('PLATFORM_IAM')).state.messages).toBe(0);
    const { rows } = await admin.query<{ aggregate_version: number; status: string; last_error: string | null }>(
      'SELECT aggregate_version, status::text AS status, last_error FROM iam.outbox_events ORDER BY aggregate_version',
    );
    expect(rows.map((row) => [row.aggregate_version, row.status])).toEqual([
      [1, 'published'],
      [2, 'pending'],
    ]);
    expect(rows[1]?.last_error).toContain("outside this relay's prefix run1");
  });
});
