import { randomUUID } from 'node:crypto';
import type { Transaction } from '../src/event-application.js';
import {
  metricSample,
  publishEvent,
  shuffled,
  startConsumerWorld,
  testEnvelope,
  waitFor,
  type ConsumerWorld,
} from './consumer-fixture.js';

let world: ConsumerWorld;

beforeAll(async () => {
  world = await startConsumerWorld();
});

afterAll(async () => {
  await world?.close();
});

/** The effect of `test.thing.updated`: overwrite the row, whatever version it has (the helper guards versions). */
const THINGS_SQL = `CREATE TABLE $schema.things (id text PRIMARY KEY, name text NOT NULL, version int NOT NULL)`;

async function overwriteThing(tx: Transaction, schema: string, id: string, name: string, version: number) {
  await tx.query(
    `INSERT INTO ${schema}.things (id, name, version) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO UPDATE SET name = excluded.name, version = excluded.version`,
    [id, name, version],
  );
}

describe('state events', () => {
  it('end with the newest state after 100 updates arrive shuffled and partly twice, and drop an older one arriving late', async () => {
    const aggregateId = `thing-${randomUUID()}`;
    const updates = Array.from({ length: 100 }, (_, i) =>
      testEnvelope({ aggregateId, aggregateVersion: i + 1, payload: { name: `name-v${i + 1}` } }),
    );
    // Shuffled, then a tail of old versions, so the newest is never the last to arrive.
    const order = shuffled(updates.filter((u) => u.aggregateVersion <= 90 || u.aggregateVersion > 95), 20_240_601);
    const tail = updates.filter((u) => u.aggregateVersion > 90 && u.aggregateVersion <= 95);
    const redelivered = shuffled(updates, 7).slice(0, 25);
    const appliedVersions: number[] = [];
    const consumer = await world.startConsumer({
      effectSql: THINGS_SQL,
      batchSize: 10,
      before: async (subject) => {
        for (const update of order.slice(0, 50)) await publishEvent(world.js, `${subject}.thing.updated`, update);
      },
      handle: (schema) => async (tx, events) => {
        for (const { envelope, payload } of events) {
          appliedVersions.push(envelope.aggregateVersion);
          await overwriteThing(tx, schema, envelope.aggregateId, String(payload.name), envelope.aggregateVersion);
        }
      },
    });
    const subject = `${consumer.subject}.thing.updated`;
    for (const update of [...order.slice(50), ...tail]) await publishEvent(world.js, subject, update);
    // A second relay republishing: other msg ids, so JetStream's dedupe does not catch them.
    for (const update of redelivered) await publishEvent(world.js, subject, update, { msgId: randomUUID() });
    await consumer.settled();

    const { rows: things } = await world.pool.query(`SELECT name, version FROM ${consumer.schema}.things WHERE id = $1`, [
      aggregateId,
    ]);
    expect(things).toEqual([{ name: 'name-v100', version: 100 }]);
    const { rows: processed } = await world.pool.query(
      `SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS ids FROM ${consumer.schema}.processed_events`,
    );
    expect(processed).toEqual([{ n: 100, ids: 100 }]);
    expect(new Set(appliedVersions).size).toBe(appliedVersions.length);
    expect(await metricSample(consumer, 'aif_event_consumer_events_total', { outcome: 'duplicate' })).toBe(25);
    expect(await metricSample(consumer, 'aif_event_consumer_dead_letters')).toBe(0);
    const applyCountBeforeLate = appliedVersions.length;

    const late = testEnvelope({ aggregateId, aggregateVersion: 50, payload: { name: 'late-v50' } });
    await publishEvent(world.js, subject, late);
    await consumer.settled();

    const { rows: after } = await world.pool.query(`SELECT name, version FROM ${consumer.schema}.things WHERE id = $1`, [
      aggregateId,
    ]);
    expect(after).toEqual([{ name: 'name-v100', version: 100 }]);
    expect(appliedVersions).toHaveLength(applyCountBeforeLate);
    const { rows: lateRow } = await world.pool.query(
      `SELECT outcome, aggregate_version FROM ${consumer.schema}.processed_events WHERE event_id = $1`,
      [late.id],
    );
    expect(lateRow).toEqual([{ outcome: 'skipped', aggregate_version: 50 }]);
    const { rows: versions } = await world.pool.query(`SELECT version FROM ${consumer.schema}.aggregate_versions`);
    expect(versions).toEqual([{ version: 100 }]);
  });
});

describe('sequenced events', () => {
  const APPLICATIONS_SQL = `CREATE TABLE $schema.applications (seq serial PRIMARY KEY, aggregate_id text NOT NULL, version int NOT NULL)`;

  const recordApplication = (schema: string) => async (tx: Transaction, events: readonly { envelope: { aggregateId: string; aggregateVersion: number } }[]) => {
    for (const { envelope } of events) {
      await tx.query(`INSERT INTO ${schema}.applications (aggregate_id, version) VALUES ($1, $2)`, [
        envelope.aggregateId,
        envelope.aggregateVersion,
      ]);
    }
  };

  async function applicationOrder(schema: string, aggregateId: string): Promise<number[]> {
    const { rows } = await world.pool.query<{ version: number }>(
      `SELECT version FROM ${schema}.applications WHERE aggregate_id = $1 ORDER BY seq`,
      [aggregateId],
    );
    return rows.map((row) => row.version);
  }

  it('apply version 1 then 2 when 2 is delivered first', async () => {
    const aggregateId = `usage-${randomUUID()}`;
    const step = (aggregateVersion: number) => testEnvelope({ type: 'test.usage.step', aggregateId, aggregateVersion });
    const consumer = await world.startConsumer({
      effectSql: APPLICATIONS_SQL,
      declaration: { backoffMs: [100] },
      before: async (subject) => {
        await publishEvent(world.js, `${subject}.usage.step`, step(2));
        await publishEvent(world.js, `${subject}.usage.step`, step(1));
      },
      handle: recordApplication,
    });
    await consumer.settled();

    expect(await applicationOrder(consumer.schema, aggregateId)).toEqual([1, 2]);
  });

  it('apply a reversed batch in version order', async () => {
    const aggregateId = `usage-${randomUUID()}`;
    const consumer = await world.startConsumer({
      effectSql: APPLICATIONS_SQL,
      batchSize: 10,
      before: async (subject) => {
        for (const version of [3, 2, 1]) {
          await publishEvent(world.js, `${subject}.usage.step`, testEnvelope({ type: 'test.usage.step', aggregateId, aggregateVersion: version }));
        }
      },
      handle: recordApplication,
    });
    await consumer.settled();

    expect(await applicationOrder(consumer.schema, aggregateId)).toEqual([1, 2, 3]);
  });
});

describe('idempotency by event id', () => {
  const EFFECTS_SQL = `CREATE TABLE $schema.effects (seq serial PRIMARY KEY, event_id uuid NOT NULL)`;

  const recordEffect = (schema: string) => async (tx: Transaction, events: readonly { envelope: { id: string } }[]) => {
    for (const { envelope } of events) await tx.query(`INSERT INTO ${schema}.effects (event_id) VALUES ($1)`, [envelope.id]);
  };

  async function effectsOf(schema: string, eventId: string): Promise<number> {
    const { rows } = await world.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${schema}.effects WHERE event_id = $1`, [
      eventId,
    ]);
    return rows[0]!.n;
  }

  it('applies an event published twice with different msg ids once, in one batch or in two', async () => {
    const together = testEnvelope({ aggregateId: `thing-${randomUUID()}`, aggregateVersion: 1 });
    const apart = testEnvelope({ aggregateId: `thing-${randomUUID()}`, aggregateVersion: 1 });
    const consumer = await world.startConsumer({
      effectSql: EFFECTS_SQL,
      batchSize: 10,
      before: async (subject) => {
        await publishEvent(world.js, `${subject}.thing.updated`, together, { msgId: 'first-relay' });
        await publishEvent(world.js, `${subject}.thing.updated`, together, { msgId: 'second-relay' });
      },
      handle: recordEffect,
    });
    const subject = `${consumer.subject}.thing.updated`;
    await publishEvent(world.js, subject, apart);
    await consumer.settled();
    await publishEvent(world.js, subject, apart, { msgId: randomUUID() });
    await consumer.settled();

    expect(await effectsOf(consumer.schema, together.id)).toBe(1);
    expect(await effectsOf(consumer.schema, apart.id)).toBe(1);
    // Each copy was acked as a duplicate, not retried until it died.
    expect(await metricSample(consumer, 'aif_event_consumer_events_total', { outcome: 'duplicate' })).toBe(2);
    expect(await metricSample(consumer, 'aif_event_consumer_dead_letters')).toBe(0);
    const info = await world.jsm.streams.info(consumer.stream);
    expect(info.state.messages).toBe(4);
  });

  it('applies an event nak-ed and redelivered once', async () => {
    const event = testEnvelope({ aggregateId: `thing-${randomUUID()}`, aggregateVersion: 1 });
    let calls = 0;
    const consumer = await world.startConsumer({
      effectSql: EFFECTS_SQL,
      handle: (schema) => async (tx, events) => {
        await recordEffect(schema)(tx, events);
        calls += 1;
        // The effect is written, then the transaction fails: the redelivery must not see it.
        if (calls === 1) throw new Error('provider timed out after writing');
      },
    });
    await publishEvent(world.js, `${consumer.subject}.thing.updated`, event);
    await consumer.settled();

    expect(calls).toBe(2);
    expect(await effectsOf(consumer.schema, event.id)).toBe(1);
  });
});

describe('ack after commit', () => {
  // The FK is checked at COMMIT: the handler returns normally and the commit itself fails.
  const DEFERRED_SQL = `
    CREATE TABLE $schema.parents (id text PRIMARY KEY);
    CREATE TABLE $schema.children (
      event_id uuid PRIMARY KEY,
      parent_id text NOT NULL REFERENCES $schema.parents (id) DEFERRABLE INITIALLY DEFERRED
    )`;

  it('redelivers an event whose transaction failed at commit, and applies it then', async () => {
    const event = testEnvelope({ aggregateId: `thing-${randomUUID()}`, aggregateVersion: 1 });
    const attempts: number[] = [];
    const consumer = await world.startConsumer({
      effectSql: DEFERRED_SQL,
      handle: (schema) => async (tx, events) => {
        attempts.push(Date.now());
        for (const { envelope } of events) {
          if (attempts.length > 1) await tx.query(`INSERT INTO ${schema}.parents (id) VALUES ($1)`, [envelope.aggregateId]);
          await tx.query(`INSERT INTO ${schema}.children (event_id, parent_id) VALUES ($1, $2)`, [envelope.id, envelope.aggregateId]);
        }
      },
    });
    await publishEvent(world.js, `${consumer.subject}.thing.updated`, event);
    await waitFor(
      async () => (await world.pool.query(`SELECT 1 FROM ${consumer.schema}.children WHERE event_id = $1`, [event.id])).rowCount === 1,
      { what: 'the redelivered event to be applied' },
    );
    await consumer.settled();

    expect(attempts).toHaveLength(2);
    const { rows } = await world.pool.query(`SELECT outcome FROM ${consumer.schema}.processed_events WHERE event_id = $1`, [event.id]);
    expect(rows).toEqual([{ outcome: 'applied' }]);
  });
});

describe('metrics', () => {
  it('report the consumer lag as the messages not yet delivered, down to 0 once caught up', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const consumer = await world.startConsumer({
      effectSql: THINGS_SQL,
      before: async (subject) => {
        for (let version = 1; version <= 15; version += 1) {
          await publishEvent(world.js, `${subject}.thing.updated`, testEnvelope({ aggregateId: 'thing-lag', aggregateVersion: version }));
        }
      },
      handle: () => () => gate,
    });
    const lag = () => metricSample(consumer, 'aif_event_consumer_pending_messages');
    // The worker holds a prefetch of 10 while its first event is stuck; 5 stay in the stream.
    await waitFor(async () => (await lag()) === 5, { what: 'a lag of 5' });

    release();
    await consumer.settled();
    expect(await lag()).toBe(0);
  });
});
