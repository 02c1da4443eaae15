import { randomUUID } from 'node:crypto';
import { ManualClock } from '@aifactory/clock';
import { EVENT_HEADERS, eventEnvelopeSchema, streamDeclarations } from '@aifactory/contracts';
import { ensureStreams, OutboxRelay } from '@aifactory/events';
import { createTestDatabase, deleteEventStreams, TEST_NATS_URL, uniqueEventSubjectPrefix, type TestDatabase } from '@aifactory/testing';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { DenyAuditor, type DenyInput } from '../src/deny-audit.js';
import { JetStreamDenySink, OutboxDenySink, type DenySink } from '../src/deny-sinks.js';
import { grantAt, quietLogger, RESOURCES, user } from './fixtures.js';

const SCHEMA = 'iam';
const prefix = uniqueEventSubjectPrefix();
const AUDIT_STREAM = `${prefix.toUpperCase()}_PLATFORM_AUDIT`;
const START = Date.parse('2026-01-01T10:05:10.000Z');

let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let db: TestDatabase;
let pool: pg.Pool;
let admin: pg.Client;

beforeAll(async () => {
  [nc, db] = await Promise.all([connect({ servers: TEST_NATS_URL, name: 'authz-deny-test' }), createTestDatabase({ subgraphs: [SCHEMA] })]);
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  await ensureStreams(jsm, streamDeclarations({ subjectPrefix: prefix }));
  pool = new pg.Pool({ connectionString: db.appUrl(SCHEMA), max: 2 });
  admin = await db.admin();
});

afterAll(async () => {
  await deleteEventStreams(prefix);
  await nc?.close();
  await pool?.end();
  await db?.drop();
});

/** A deny of its own per test (a fresh principal), so tests sharing the stream and table do not see each other's. */
function freshDeny(): DenyInput {
  return {
    principal: { ...user([grantAt.project('viewer', 'PB')]), subject: `https://idp.test|${randomUUID()}` },
    scope: 'gpuaas:allocation:create',
    resource: RESOURCES.PA,
    resourceId: null,
    correlationId: `corr-${randomUUID()}`,
    reason: 'resource_not_covered',
  };
}

function instance(sink: DenySink): DenyAuditor {
  return new DenyAuditor({ publisher: 'gpuaas', sink, clock: new ManualClock(START), logger: quietLogger() });
}

async function auditMessages(): Promise<number> {
  return (await jsm.streams.info(AUDIT_STREAM)).state.messages;
}

async function outboxRows(subject: string): Promise<number> {
  const { rows } = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${SCHEMA}.outbox_events WHERE actor->>'id' = $1`, [subject]);
  return rows[0]?.n ?? 0;
}

describe('JetStreamDenySink', () => {
  it('turns 1,000 identical denies within a minute into one message, as the relay would publish it', async () => {
    const denies = instance(new JetStreamDenySink(js, prefix));
    const deny = freshDeny();
    const before = await auditMessages();

    for (let i = 0; i < 1_000; i += 1) denies.record(deny);
    await denies.flush();

    expect((await auditMessages()) - before).toBe(1);
    const stored = await jsm.streams.getMessage(AUDIT_STREAM, { last_by_subj: `${prefix}.platform.audit.gpuaas.access.deny` });
    const envelope = eventEnvelopeSchema.parse(stored?.json());
    expect(envelope).toMatchObject({
      type: 'platform.audit.gpuaas.access.deny',
      aggregateType: 'audit',
      aggregateId: envelope.id,
      actor: { type: 'user', id: deny.principal.subject },
      payload: { action: 'gpuaas.access.deny', outcome: 'denied', scope: 'gpuaas:allocation:create', reason: 'resource_not_covered' },
    });
    expect(stored?.header.get(EVENT_HEADERS.msgId)).toBe(envelope.id);
    expect(stored?.header.get(EVENT_HEADERS.correlationId)).toBe(deny.correlationId);
  });

  it('keeps one message when two instances record the same deny', async () => {
    const deny = freshDeny();
    const first = instance(new JetStreamDenySink(js, prefix));
    const second = instance(new JetStreamDenySink(js, prefix));
    const before = await auditMessages();

    first.record(deny);
    second.record(deny);
    await Promise.all([first.flush(), second.flush()]);

    expect((await auditMessages()) - before).toBe(1);
  });
});

describe('OutboxDenySink', () => {
  it('writes 1,000 identical denies within a minute as one outbox row', async () => {
    const denies = instance(new OutboxDenySink(pool, SCHEMA, prefix));
    const deny = freshDeny();

    for (let i = 0; i < 1_000; i += 1) denies.record(deny);
    await denies.flush();

    expect(await outboxRows(deny.principal.subject)).toBe(1);
  });

  it('keeps one row when two instances record the same deny, and the relay publishes it once', async () => {
    const deny = freshDeny();
    const first = instance(new OutboxDenySink(pool, SCHEMA, prefix));
    const second = instance(new OutboxDenySink(pool, SCHEMA, prefix));
    const relay = new OutboxRelay({ pool, schema: SCHEMA, nc, logger: quietLogger(), subjectPrefix: prefix });
    // Rows other tests left pending are published first, so the count below is this deny's alone.
    await relay.relayOnce();

    first.record(deny);
    second.record(deny);
    await Promise.all([first.flush(), second.flush()]);

    expect(await outboxRows(deny.principal.subject)).toBe(1);
    const before = await auditMessages();
    expect(await relay.relayOnce()).toMatchObject({ claimed: 1, published: 1 });
    expect((await auditMessages()) - before).toBe(1);
  });
});
