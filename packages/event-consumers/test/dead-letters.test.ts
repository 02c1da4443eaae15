import { randomUUID } from 'node:crypto';
import { isAppError } from '@aifactory/errors';
import {
  metricSample,
  publishEvent,
  startConsumerWorld,
  testEnvelope,
  waitFor,
  type ConsumerWorld,
  type TestConsumer,
} from './consumer-fixture.js';

let world: ConsumerWorld;

beforeAll(async () => {
  world = await startConsumerWorld();
});

afterAll(async () => {
  await world?.close();
});

const BALANCES_SQL = `CREATE TABLE $schema.balances (account_id text PRIMARY KEY, applied_event uuid NOT NULL, writes int NOT NULL DEFAULT 1)`;

async function deadLetterCount(consumer: TestConsumer): Promise<number> {
  const { rows } = await world.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${consumer.schema}.dead_letters`);
  return rows[0]!.n;
}

describe('a handler that throws', () => {
  it('is retried with backoff, dead-lettered after maxDeliver with its reason, and applied once by a replay after the fix', async () => {
    const event = testEnvelope({ aggregateId: `account-${randomUUID()}`, aggregateVersion: 1 });
    const attempts: number[] = [];
    let ledgerDown = true;
    const consumer = await world.startConsumer({
      effectSql: BALANCES_SQL,
      declaration: { maxDeliver: 3, backoffMs: [150, 300] },
      handle: (schema) => async (tx, events) => {
        attempts.push(Date.now());
        if (ledgerDown) throw new Error('ledger unavailable');
        for (const { envelope } of events) {
          await tx.query(
            `INSERT INTO ${schema}.balances (account_id, applied_event) VALUES ($1, $2)
             ON CONFLICT (account_id) DO UPDATE SET writes = balances.writes + 1`,
            [envelope.aggregateId, envelope.id],
          );
        }
      },
    });
    await publishEvent(world.js, `${consumer.subject}.balance.updated`, event);
    await waitFor(async () => (await deadLetterCount(consumer)) === 1, { what: 'the dead letter' });
    await consumer.settled();

    expect(attempts).toHaveLength(3);
    // nak delays are the declared backoff: 150 ms after the first failure, 300 ms after the second.
    expect(attempts[1]! - attempts[0]!).toBeGreaterThanOrEqual(140);
    expect(attempts[2]! - attempts[1]!).toBeGreaterThanOrEqual(290);
    const [letter] = await consumer.running.listDeadLetters();
    expect(letter).toEqual(
      expect.objectContaining({
        eventId: event.id,
        subject: `${consumer.subject}.balance.updated`,
        envelope: event,
        reason: 'handler_failed',
        detail: 'ledger unavailable',
        deliveries: 3,
      }),
    );
    expect(await metricSample(consumer, 'aif_event_consumer_dead_letters')).toBe(1);
    expect(await metricSample(consumer, 'aif_event_consumer_events_total', { outcome: 'retried' })).toBe(2);
    expect(await metricSample(consumer, 'aif_event_consumer_events_total', { outcome: 'dead_lettered' })).toBe(1);

    ledgerDown = false;
    await expect(consumer.running.replayDeadLetter(event.id)).resolves.toEqual({ outcome: 'applied' });

    const { rows } = await world.pool.query(`SELECT applied_event, writes FROM ${consumer.schema}.balances`);
    expect(rows).toEqual([{ applied_event: event.id, writes: 1 }]);
    expect(await deadLetterCount(consumer)).toBe(0);
    expect(await metricSample(consumer, 'aif_event_consumer_dead_letters')).toBe(0);
    expect(await metricSample(consumer, 'aif_event_consumer_events_total', { outcome: 'applied' })).toBe(1);
    const again = await consumer.running.replayDeadLetter(event.id).catch((error: unknown) => error);
    expect(isAppError(again) && again.code).toBe('NOT_FOUND');
    expect(attempts).toHaveLength(4);
  });

  it('replays a dead letter of an event applied meanwhile without applying it again', async () => {
    const event = testEnvelope({ aggregateId: `account-${randomUUID()}`, aggregateVersion: 1 });
    let writes = 0;
    const consumer = await world.startConsumer({
      effectSql: BALANCES_SQL,
      declaration: { maxDeliver: 1 },
      handle: () => async () => {
        writes += 1;
        if (writes === 1) throw new Error('ledger unavailable');
      },
    });
    const subject = `${consumer.subject}.balance.updated`;
    await publishEvent(world.js, subject, event);
    await waitFor(async () => (await deadLetterCount(consumer)) === 1, { what: 'the dead letter' });
    // A republish (another relay) gets through and settles the event; its dead letter goes with it.
    await publishEvent(world.js, subject, event, { msgId: randomUUID() });
    await consumer.settled();

    expect(writes).toBe(2);
    expect(await deadLetterCount(consumer)).toBe(0);
  });
});

describe('an event the consumer cannot read', () => {
  it('goes to dead letters at the first delivery: unknown_type, unknown_version, invalid_envelope', async () => {
    let handled = 0;
    const consumer = await world.startConsumer({
      effectSql: BALANCES_SQL,
      declaration: { maxDeliver: 5 },
      handle: () => async () => {
        handled += 1;
      },
    });
    const unknownType = testEnvelope({ type: 'test.gadget.created', aggregateId: 'gadget-1', aggregateVersion: 1 });
    const unknownVersion = testEnvelope({ version: 9, aggregateId: 'thing-1', aggregateVersion: 1 });
    await publishEvent(world.js, `${consumer.subject}.gadget.created`, unknownType);
    await publishEvent(world.js, `${consumer.subject}.thing.updated`, unknownVersion);
    await world.js.publish(`${consumer.subject}.thing.updated`, 'not json', { msgID: 'garbage-1' });
    await waitFor(async () => (await deadLetterCount(consumer)) === 3, { what: 'three dead letters' });
    await consumer.settled();

    const letters = await consumer.running.listDeadLetters();
    expect(letters.map(({ eventId, reason, deliveries }) => ({ eventId, reason, deliveries }))).toEqual(
      expect.arrayContaining([
        { eventId: unknownType.id, reason: 'unknown_type', deliveries: 1 },
        { eventId: unknownVersion.id, reason: 'unknown_version', deliveries: 1 },
        { eventId: 'garbage-1', reason: 'invalid_envelope', deliveries: 1 },
      ]),
    );
    expect(handled).toBe(0);
    // Still unknown: a replay keeps the letter.
    await expect(consumer.running.replayDeadLetter(unknownType.id)).resolves.toEqual({ outcome: 'kept', reason: 'unknown_type' });
    expect(await deadLetterCount(consumer)).toBe(3);
  });
});

describe('a sequenced event whose predecessor never comes', () => {
  it('is put back with backoff, then dead-lettered as version_gap, and replayed once the gap is filled', async () => {
    const aggregateId = `usage-${randomUUID()}`;
    const applied: number[] = [];
    const consumer = await world.startConsumer({
      effectSql: BALANCES_SQL,
      declaration: { maxDeliver: 3, backoffMs: [50] },
      handle: () => async (_tx, events) => {
        applied.push(...events.map((e) => e.envelope.aggregateVersion));
      },
    });
    const subject = `${consumer.subject}.usage.step`;
    const second = testEnvelope({ type: 'test.usage.step', aggregateId, aggregateVersion: 2 });
    await publishEvent(world.js, subject, second);
    await waitFor(async () => (await deadLetterCount(consumer)) === 1, { what: 'the version_gap dead letter' });
    const [letter] = await consumer.running.listDeadLetters();
    expect(letter).toEqual(expect.objectContaining({ eventId: second.id, reason: 'version_gap', deliveries: 3 }));
    await expect(consumer.running.replayDeadLetter(second.id)).resolves.toEqual({ outcome: 'kept', reason: 'version_gap' });

    await publishEvent(world.js, subject, testEnvelope({ type: 'test.usage.step', aggregateId, aggregateVersion: 1 }));
    await consumer.settled();
    await expect(consumer.running.replayDeadLetter(second.id)).resolves.toEqual({ outcome: 'applied' });

    expect(applied).toEqual([1, 2]);
  });
});
