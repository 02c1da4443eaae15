import { randomBytes } from 'node:crypto';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ensureConsumer, type ConsumerDeclaration } from '../src/consumer-declaration.js';
import { startPrivateNats, type PrivateNats } from '@aifactory/testing';

let nats: PrivateNats;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  nats = await startPrivateNats();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

async function freshStream(): Promise<{ stream: string; declaration: ConsumerDeclaration }> {
  const id = randomBytes(4).toString('hex');
  const stream = `DECL_${id}`;
  await jsm.streams.add({ name: stream, subjects: [`decl_${id}.>`] });
  return {
    stream,
    declaration: {
      durableName: `ledger_${id}`,
      filterSubjects: [`decl_${id}.billing.>`],
      ackWaitMs: 30_000,
      maxDeliver: 8,
      backoffMs: [1_000, 5_000, 30_000],
    },
  };
}

describe('ensureConsumer', () => {
  it('creates the durable consumer as declared, then leaves it unchanged when declared again', async () => {
    const { stream, declaration } = await freshStream();

    const created = await ensureConsumer(jsm, stream, declaration);
    const again = await ensureConsumer(jsm, stream, declaration);

    expect(created.outcome).toBe('created');
    expect(created.info.config).toEqual(
      expect.objectContaining({
        durable_name: declaration.durableName,
        ack_policy: 'explicit',
        ack_wait: 30_000_000_000,
        max_deliver: 8,
        filter_subject: declaration.filterSubjects[0],
      }),
    );
    // The backoff is applied by the consumer helper's nak delays, so JetStream keeps the declared ack wait.
    expect(created.info.config.backoff ?? []).toEqual([]);
    expect(again.outcome).toBe('unchanged');
    expect(again.info.created).toBe(created.info.created);
  });

  it('updates an existing consumer to a changed declaration', async () => {
    const { stream, declaration } = await freshStream();
    await ensureConsumer(jsm, stream, declaration);

    const updated = await ensureConsumer(jsm, stream, { ...declaration, maxDeliver: 3, ackWaitMs: 10_000 });

    expect(updated.outcome).toBe('updated');
    const info = await jsm.consumers.info(stream, declaration.durableName);
    expect(info.config).toEqual(expect.objectContaining({ max_deliver: 3, ack_wait: 10_000_000_000 }));
  });

  it('refuses a declaration it cannot honour before touching JetStream', async () => {
    const { stream, declaration } = await freshStream();

    await expect(ensureConsumer(jsm, stream, { ...declaration, maxDeliver: 0, filterSubjects: [] })).rejects.toMatchObject({
      code: 'INTERNAL_ERROR',
      details: { problems: ['filterSubjects must name at least one subject', 'maxDeliver must be at least 1'] },
    });
    await expect(jsm.consumers.info(stream, declaration.durableName)).rejects.toThrow();
  });
});
