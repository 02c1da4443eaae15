import { randomBytes, randomUUID } from 'node:crypto';
import type { EventEnvelope } from '@aifactory/contracts';
import { createLogger, type Logger } from '@aifactory/logging';
import { ServiceMetrics } from '@aifactory/telemetry';
import { jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { CONSUMER_TABLES_SQL } from '../src/consumer-tables.js';
import { ensureConsumer, type ConsumerDeclaration } from '../src/consumer-declaration.js';
import type { DecodeEvent, HandleEvents, KindOf } from '../src/event-application.js';
import { runConsumer, type RunningConsumer } from '../src/run-consumer.js';
import type { EventKind } from '../src/version-rule.js';
import { captureLogs, createTestDatabase, startPrivateNats, type CapturedLogs, type PrivateNats, type TestDatabase } from '@aifactory/testing';

/** One private nats-server and one private database per test file; each test makes its own stream and schema. */
export interface ConsumerWorld {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  pool: pg.Pool;
  logs: CapturedLogs;
  logger: Logger;
  /** A consumer with its own stream, schema and tables; stopped by `close()`. */
  startConsumer(options: TestConsumerOptions): Promise<TestConsumer>;
  close(): Promise<void>;
}

/** Test events carry their payload as a plain record. */
export type TestPayload = Record<string, unknown>;

export interface TestConsumerOptions {
  /** Extra tables for the handler's effect, `$schema` replaced by the consumer's schema. */
  effectSql: string;
  declaration?: Partial<ConsumerDeclaration>;
  decode?: DecodeEvent<TestPayload>;
  kindOf?: KindOf;
  handle: (schema: string) => HandleEvents<TestPayload>;
  batchSize?: number;
  /** Publish these before the consumer starts, so they arrive together. */
  before?: (subject: string) => Promise<void>;
}

export interface TestConsumer {
  schema: string;
  stream: string;
  /** The subject prefix of this consumer's stream; publish to `${subject}.<anything>`. */
  subject: string;
  declaration: ConsumerDeclaration;
  running: RunningConsumer;
  metrics: ServiceMetrics;
  /** Resolves once every message of the stream is acked or terminated. */
  settled(timeoutMs?: number): Promise<void>;
}

export async function startConsumerWorld(): Promise<ConsumerWorld> {
  const nats: PrivateNats = await startPrivateNats();
  let db: TestDatabase | undefined;
  let nc: NatsConnection | undefined;
  let pool: pg.Pool | undefined;
  const running: RunningConsumer[] = [];
  const close = async () => {
    for (const consumer of running) await consumer.stop();
    await pool?.end();
    await nc?.close();
    await db?.drop();
    await nats.dispose();
  };
  try {
    db = await createTestDatabase({ migrate: false, subgraphs: [] });
    pool = new pg.Pool({ connectionString: db.adminUrl, max: 4 });
    nc = await connect({ servers: nats.url, name: 'event-consumers-test' });
    const jsm = await jetstreamManager(nc);
    const js = jsm.jetstream();
    const logs = captureLogs();
    const logger = createLogger({ service: 'event-consumers-test', level: 'debug', destination: logs.destination });
    const world: ConsumerWorld = {
      nc,
      js,
      jsm,
      pool,
      logs,
      logger,
      close,
      startConsumer: async (options) => {
        const id = randomBytes(4).toString('hex');
        const schema = `consumer_${id}`;
        const stream = `EVENTS_${id}`;
        const subject = `test_${id}`;
        await pool!.query(`CREATE SCHEMA ${schema}`);
        await pool!.query(CONSUMER_TABLES_SQL(schema));
        await pool!.query(options.effectSql.replaceAll('$schema', schema));
        await jsm.streams.add({ name: stream, subjects: [`${subject}.>`] });
        const declaration: ConsumerDeclaration = {
          durableName: `worker_${id}`,
          filterSubjects: [`${subject}.>`],
          ackWaitMs: 10_000,
          maxDeliver: 5,
          backoffMs: [50],
          ...options.declaration,
        };
        await ensureConsumer(jsm, stream, declaration);
        await options.before?.(subject);
        const metrics = new ServiceMetrics('event-consumers-test');
        const consumer = await runConsumer({
          js,
          pool: pool!,
          schema,
          stream,
          consumer: declaration,
          decode: options.decode ?? decodeTestEvent,
          kindOf: options.kindOf ?? testKindOf,
          handle: options.handle(schema),
          ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
          logger,
          metrics,
        });
        running.push(consumer);
        return {
          schema,
          stream,
          subject,
          declaration,
          running: consumer,
          metrics,
          settled: (timeoutMs) =>
            waitFor(
              async () => {
                const info = await jsm.consumers.info(stream, declaration.durableName);
                const last = (await jsm.streams.info(stream)).state.last_seq;
                return info.num_pending === 0 && info.num_ack_pending === 0 && info.delivered.stream_seq >= last;
              },
              { what: `consumer ${declaration.durableName} to settle`, timeoutMs },
            ),
        };
      },
    };
    return world;
  } catch (error) {
    await close();
    throw error;
  }
}

/** The event contracts of these tests: `test.thing.updated` v1 is state, `test.usage.step` v1 is sequenced. */
const TEST_KINDS: Record<string, { versions: number[]; kind: EventKind }> = {
  'test.thing.updated': { versions: [1], kind: 'state' },
  'test.usage.step': { versions: [1], kind: 'sequenced' },
};

export const decodeTestEvent: DecodeEvent<TestPayload> = (envelope) => {
  const contract = TEST_KINDS[envelope.type];
  if (!contract) return { ok: false, reason: 'unknown_type', detail: envelope.type };
  if (!contract.versions.includes(envelope.version)) {
    return { ok: false, reason: 'unknown_version', detail: `${envelope.type} v${envelope.version}` };
  }
  return { ok: true, payload: envelope.payload };
};

export const testKindOf: KindOf = (envelope) => TEST_KINDS[envelope.type]?.kind;

export function testEnvelope(fields: {
  type?: string;
  version?: number;
  aggregateId: string;
  aggregateVersion: number;
  payload?: Record<string, unknown>;
  id?: string;
}): EventEnvelope {
  return {
    id: fields.id ?? randomUUID(),
    type: fields.type ?? 'test.thing.updated',
    version: fields.version ?? 1,
    occurredAt: new Date().toISOString(),
    correlationId: `corr-${randomBytes(6).toString('hex')}`,
    traceparent: null,
    actor: { type: 'system', id: 'event-consumers-test' },
    organizationId: null,
    departmentId: null,
    projectId: null,
    registryVersions: {},
    aggregateType: 'thing',
    aggregateId: fields.aggregateId,
    aggregateVersion: fields.aggregateVersion,
    payload: fields.payload ?? {},
  };
}

/** Publishes as the relay does (msg id = event id) unless `msgId` says otherwise, as a second relay would. */
export async function publishEvent(
  js: JetStreamClient,
  subject: string,
  envelope: EventEnvelope,
  options: { msgId?: string } = {},
): Promise<void> {
  await js.publish(subject, JSON.stringify(envelope), { msgID: options.msgId ?? envelope.id });
}

export async function waitFor(
  condition: () => Promise<boolean>,
  options: { what: string; timeoutMs?: number | undefined; everyMs?: number },
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what}`);
    await new Promise((resolve) => setTimeout(resolve, options.everyMs ?? 25));
  }
}

/** The value of one sample of the consumer's metrics in the Prometheus text, or undefined when absent. */
export async function metricSample(
  consumer: TestConsumer,
  metric: string,
  labels: Record<string, string> = {},
): Promise<number | undefined> {
  const { body } = await consumer.metrics.render();
  const wanted = Object.entries({ consumer: consumer.declaration.durableName, ...labels }).map(([k, v]) => `${k}="${v}"`);
  const line = body.split('\n').find((l) => l.startsWith(`${metric}{`) && wanted.every((label) => l.includes(label)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** A fixed-seed shuffle, so a failure can be replayed. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed;
  const random = () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
  for (let i = out.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
