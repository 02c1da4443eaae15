import type { Transaction } from '../src/event-application.js';
import { publishEvent, startConsumerWorld, testEnvelope, waitFor, type ConsumerWorld } from './consumer-fixture.js';

let world: ConsumerWorld;

beforeAll(async () => {
  world = await startConsumerWorld();
});

afterAll(async () => {
  await world?.close();
});

const SEEN_SQL = `CREATE TABLE $schema.seen (id text PRIMARY KEY)`;

describe('stopping a consumer', () => {
  it('returns while messages are still buffered behind the batch in hand, and leaves them unacked for redelivery', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered!: () => void;
    const handling = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const consumer = await world.startConsumer({
      effectSql: SEEN_SQL,
      batchSize: 1,
      // Ten events wait in the stream, so the pull buffers several while the first is handled.
      before: async (subject) => {
        for (let i = 0; i < 10; i++) await publishEvent(world.js, `${subject}.thing.updated`, testEnvelope({ aggregateId: `thing-${i}`, aggregateVersion: 1 }));
      },
      handle: (schema) => async (tx: Transaction, events) => {
        entered();
        await held;
        for (const { envelope } of events) await tx.query(`INSERT INTO ${schema}.seen (id) VALUES ($1)`, [envelope.id]);
      },
    });
    await handling;

    const stopped = consumer.running.stop();
    release();
    const outcome = await Promise.race([stopped.then(() => 'stopped'), new Promise((resolve) => setTimeout(() => resolve('hung'), 5_000))]);
    expect(outcome).toBe('stopped');

    const { rows } = await world.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${consumer.schema}.seen`);
    expect(rows[0]!.n).toBeLessThan(10);
    // What was taken but not handled is neither acked nor lost: JetStream still counts it as pending.
    await waitFor(
      async () => {
        const info = await world.jsm.consumers.info(consumer.stream, consumer.declaration.durableName);
        return info.num_ack_pending + info.num_pending === 10 - rows[0]!.n;
      },
      { what: 'the unhandled events to stay pending' },
    );
  });
});
