import { randomBytes, randomUUID } from 'node:crypto';
import {
  findEventDefinition,
  organizationUpdatedV1,
  parseEvent,
  prefixSubject,
  streamDeclarations,
  type EventEnvelope,
  type OrganizationState,
} from '@aifactory/contracts';
import { ensureStreams, OutboxRelay, writeOutboxEvent } from '@aifactory/events';
import { createLogger } from '@aifactory/logging';
import { ServiceMetrics } from '@aifactory/telemetry';
import { captureLogs, createTestDatabase, startPrivateNats, type PrivateNats, type TestDatabase } from '@aifactory/testing';
import { jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import {
  CONSUMER_TABLES_SQL,
  ensureConsumer,
  runConsumer,
  type ConsumerDeclaration,
  type DecodeEvent,
  type HandleEvents,
  type KindOf,
  type RunningConsumer,
} from '../src/index.js';
import { waitFor } from './consumer-fixture.js';

/**
 * The whole path of one aggregate's updates: iam's outbox, two relays racing
 * over it, JetStream, and a durable consumer keeping a read model. The
 * consumer's version rule, not the order of arrival, decides the end state.
 */

const UPDATES = 100;
const WRITERS = 4;
const run = randomBytes(4).toString('hex');
/** This run's own subjects and stream on its private server: `<prefix>.platform.iam.…` in `<PREFIX>_PLATFORM_IAM`. */
const PREFIX = `t${run}`;
const STREAM = `${PREFIX.toUpperCase()}_PLATFORM_IAM`;
const SUBJECT = prefixSubject(organizationUpdatedV1.subject, PREFIX);
const READ_MODEL_SCHEMA = `org_directory_${run}`;
const DECLARATION: ConsumerDeclaration = {
  durableName: `org_directory_${run}`,
  filterSubjects: [SUBJECT],
  ackWaitMs: 10_000,
  maxDeliver: 5,
  backoffMs: [50],
};

let db: TestDatabase;
let nats: PrivateNats;
let nc: NatsConnection;
let jsm: JetStreamManager;
let js: JetStreamClient;
let admin: pg.Client;
const pools: pg.Pool[] = [];
const relays: OutboxRelay[] = [];
let consumer: RunningConsumer | undefined;
const consumerMetrics = new ServiceMetrics('relays-to-consumer-test');

beforeAll(async () => {
  [db, nats] = await Promise.all([createTestDatabase({ subgraphs: ['iam'] }), startPrivateNats()]);
  nc = await connect({ servers: nats.url, name: 'relays-to-consumer-test' });
  jsm = await jetstreamManager(nc);
  js = jsm.jetstream();
  await ensureStreams(
    jsm,
    streamDeclarations({ subjectPrefix: PREFIX }).filter((stream) => stream.name === STREAM),
  );
  admin = await db.admin();
  await admin.query(`CREATE SCHEMA ${READ_MODEL_SCHEMA}`);
  await admin.query(CONSUMER_TABLES_SQL(READ_MODEL_SCHEMA));
  await admin.query(
    `CREATE TABLE ${READ_MODEL_SCHEMA}.organizations (id uuid PRIMARY KEY, name text NOT NULL, version int NOT NULL)`,
  );
});

afterAll(async () => {
  await consumer?.stop();
  await Promise.all(relays.map((relay) => relay.stop()));
  await Promise.all(pools.map((pool) => pool.end()));
  await nc?.close();
  await nats?.dispose();
  await db?.drop();
});

function pool(connectionString: string, max: number): pg.Pool {
  const created = new pg.Pool({ connectionString, max });
  pools.push(created);
  return created;
}

function quietLogger(service: string) {
  return createLogger({ service, level: 'debug', destination: captureLogs().destination });
}

/** The consumer's contract: organization updates, checked by @aifactory/contracts. */
const decodeOrganization: DecodeEvent<OrganizationState> = (envelope) => {
  const parsed = parseEvent(envelope);
  if (!parsed.ok) return { ok: false, reason: parsed.reason, detail: parsed.issues.join('; ') };
  if (parsed.definition !== organizationUpdatedV1) return { ok: false, reason: 'unknown_type', detail: envelope.type };
  return { ok: true, payload: parsed.payload as OrganizationState };
};

const kindOfOrganization: KindOf = (envelope) => findEventDefinition(envelope.type, envelope.version)?.kind;

/** Overwrites the row whatever its version: guarding versions is the consumer helper's job. */
const recordOrganizationName: HandleEvents<OrganizationState> = async (tx, events) => {
  for (const { envelope, payload } of events) {
    await tx.query(
      `INSERT INTO ${READ_MODEL_SCHEMA}.organizations (id, name, version) VALUES ($1, $2, $3)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version`,
      [payload.id, payload.name, envelope.aggregateVersion],
    );
  }
};

/** Every message of the stream delivered to the consumer and acked (or terminated). */
async function consumerSettled(what: string): Promise<void> {
  await waitFor(
    async () => {
      const [info, stream] = await Promise.all([jsm.consumers.info(STREAM, DECLARATION.durableName), jsm.streams.info(STREAM)]);
      return info.num_pending === 0 && info.num_ack_pending === 0 && info.delivered.stream_seq >= stream.state.last_seq;
    },
    { what, timeoutMs: 20_000 },
  );
}

async function readModel(organizationId: string): Promise<{ name: string; version: number }[]> {
  const { rows } = await admin.query<{ name: string; version: number }>(
    `SELECT name, version FROM ${READ_MODEL_SCHEMA}.organizations WHERE id = $1`,
    [organizationId],
  );
  return rows;
}

async function processedEventIds(): Promise<number> {
  const { rows } = await admin.query<{ ids: number }>(
    `SELECT count(DISTINCT event_id)::int AS ids FROM ${READ_MODEL_SCHEMA}.processed_events WHERE consumer = $1`,
    [DECLARATION.durableName],
  );
  return rows[0]!.ids;
}

async function duplicatesCounted(): Promise<number> {
  const metric = consumerMetrics.registry.getSingleMetric('aif_event_consumer_events_total');
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  return values.filter((sample) => sample.labels.outcome === 'duplicate').reduce((sum, sample) => sum + sample.value, 0);
}

describe('an organization updated through the outbox, two relays and a durable consumer', () => {
  it('ends in its last state at the consumer after 100 updates, and an older version arriving late is dropped', async () => {
    const relayPool = pool(db.appUrl('iam'), 4);
    for (const name of ['relay-a', 'relay-b']) {
      // Small batches, so both relays keep claiming while the writers are still committing.
      const relay = new OutboxRelay({ pool: relayPool, schema: 'iam', nc, logger: quietLogger(name), batchSize: 5, subjectPrefix: PREFIX });
      relays.push(relay);
      await relay.start();
    }
    await ensureConsumer(jsm, STREAM, DECLARATION);
    consumer = await runConsumer({
      js,
      pool: pool(db.adminUrl, 4),
      schema: READ_MODEL_SCHEMA,
      stream: STREAM,
      consumer: DECLARATION,
      decode: decodeOrganization,
      kindOf: kindOfOrganization,
      handle: recordOrganizationName,
      logger: quietLogger('org-directory'),
      metrics: consumerMetrics,
    });

    // 100 transactions, four in flight at a time, each committing one update (versions 1..100).
    const organizationId = randomUUID();
    const writers = pool(db.appUrl('iam'), WRITERS);
    const written = new Map<number, EventEnvelope>();
    let nextVersion = 1;
    const writeUpdates = async () => {
      while (nextVersion <= UPDATES) {
        const version = nextVersion++;
        const client = await writers.connect();
        try {
          await client.query('BEGIN');
          const envelope = await writeOutboxEvent(
            client,
            {
              type: organizationUpdatedV1.type,
              version: organizationUpdatedV1.version,
              aggregateId: organizationId,
              aggregateVersion: version,
              actor: { type: 'user', id: 'user-1' },
              organizationId,
              payload: { id: organizationId, slug: `org-${run}`, name: `v${version}`, billingCurrency: 'EUR', status: 'active' },
            },
            { subjectPrefix: PREFIX },
          );
          await client.query('COMMIT');
          written.set(version, envelope);
        } catch (error) {
          await client.query('ROLLBACK');
          throw error;
        } finally {
          client.release();
        }
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, writeUpdates));

    await waitFor(
      async () => {
        const { rows } = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM iam.outbox_events WHERE status = 'published'`);
        return rows[0]!.n === UPDATES;
      },
      { what: 'every outbox row published' },
    );
    await consumerSettled('the consumer to take every update');

    expect((await jsm.streams.info(STREAM)).state.messages).toBe(UPDATES);
    expect(await readModel(organizationId)).toEqual([{ name: `v${UPDATES}`, version: UPDATES }]);
    expect(await processedEventIds()).toBe(UPDATES);
    expect(await consumer.listDeadLetters()).toEqual([]);

    // Version 50 again, as a relay republishing after the duplicate window: a new msg id, so JetStream keeps it.
    const version50 = written.get(50)!;
    await js.publish(SUBJECT, JSON.stringify(version50), { msgID: randomUUID() });
    // And version 50 as a different event (its own id), so only the version rule can drop it.
    const lateEvent = { ...version50, id: randomUUID() };
    await js.publish(SUBJECT, JSON.stringify(lateEvent), { msgID: lateEvent.id });
    await consumerSettled('the consumer to take the late version 50');

    expect((await jsm.streams.info(STREAM)).state.messages).toBe(UPDATES + 2);
    expect(await readModel(organizationId)).toEqual([{ name: `v${UPDATES}`, version: UPDATES }]);
    expect(await duplicatesCounted()).toBe(1);
    // The copy was known by its event id; the other version 50 was recorded as dropped by the version rule.
    expect(await processedEventIds()).toBe(UPDATES + 1);
    const { rows: late } = await admin.query(
      `SELECT outcome, aggregate_version FROM ${READ_MODEL_SCHEMA}.processed_events WHERE consumer = $1 AND event_id = $2`,
      [DECLARATION.durableName, lateEvent.id],
    );
    expect(late).toEqual([{ outcome: 'skipped', aggregate_version: 50 }]);
    const { rows: versions } = await admin.query(
      `SELECT aggregate_type, aggregate_id, version FROM ${READ_MODEL_SCHEMA}.aggregate_versions WHERE consumer = $1`,
      [DECLARATION.durableName],
    );
    expect(versions).toEqual([{ aggregate_type: 'organization', aggregate_id: organizationId, version: UPDATES }]);
  });
});
