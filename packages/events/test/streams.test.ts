import { streamDeclarations } from '@aifactory/contracts';
import { startPrivateNats, type PrivateNats } from '@aifactory/testing';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { ensureStreams } from '../src/index.js';
import { connectTo } from './support.js';

let nats: PrivateNats;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  nats = await startPrivateNats();
  nc = await connectTo(nats);
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

describe('ensureStreams', () => {
  it('creates every declared stream once; a second run changes nothing', async () => {
    const declarations = streamDeclarations({ subjectPrefix: 'twice' });

    const first = await ensureStreams(jsm, declarations);
    const created = await Promise.all(declarations.map((declaration) => jsm.streams.info(declaration.name)));
    const second = await ensureStreams(jsm, declarations);
    const after = await Promise.all(declarations.map((declaration) => jsm.streams.info(declaration.name)));

    expect(first).toEqual(declarations.map(({ name }) => ({ name, change: 'created' })));
    expect(second).toEqual(declarations.map(({ name }) => ({ name, change: 'unchanged' })));
    expect(after.map((info) => info.config)).toEqual(created.map((info) => info.config));
    const iam = after.find((info) => info.config.name === 'TWICE_PLATFORM_IAM');
    expect(iam?.config).toMatchObject({
      subjects: ['twice.platform.iam.>'],
      retention: 'limits',
      storage: 'file',
      num_replicas: 1,
      discard: 'old',
      duplicate_window: nanos(120_000),
      max_age: nanos(7 * 24 * 60 * 60 * 1000),
    });
  });

  it('applies a changed limit to the existing stream and leaves the others alone', async () => {
    const declarations = streamDeclarations({ subjectPrefix: 'changed' });
    await ensureStreams(jsm, declarations);

    const longer = declarations.map((declaration) =>
      declaration.name === 'CHANGED_TOKENFACTORY' ? { ...declaration, maxAgeMs: 30 * 24 * 60 * 60 * 1000 } : declaration,
    );
    const result = await ensureStreams(jsm, longer);

    expect(result.filter(({ change }) => change !== 'unchanged')).toEqual([{ name: 'CHANGED_TOKENFACTORY', change: 'updated' }]);
    expect((await jsm.streams.info('CHANGED_TOKENFACTORY')).config.max_age).toBe(nanos(30 * 24 * 60 * 60 * 1000));
  });
});
