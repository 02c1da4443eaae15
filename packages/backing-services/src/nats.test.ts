import { createLogger } from '@aifactory/logging';
import { captureLogs } from '@aifactory/testing';
import { connectNats, drainNats } from './nats.js';

const NATS_SERVER = process.env.TEST_NATS_SERVER ?? '127.0.0.1:4222';

function connectQuietly() {
  return connectNats({
    servers: [NATS_SERVER],
    name: 'nats-test',
    logger: createLogger({ service: 'nats-test', destination: captureLogs().destination }),
  });
}

describe('connectNats', () => {
  it('logs the connection and its close as structured lines', async () => {
    const logs = captureLogs();
    const nc = await connectNats({
      servers: [NATS_SERVER],
      name: 'nats-test',
      logger: createLogger({ service: 'nats-test', destination: logs.destination }),
    });

    expect(await nc.rtt()).toBeGreaterThanOrEqual(0);
    await drainNats(nc);

    expect(nc.isClosed()).toBe(true);
    expect(logs.lines()).toEqual([
      expect.objectContaining({ level: 'info', msg: 'nats connected', nats: 'nats-test', server: NATS_SERVER }),
      expect.objectContaining({ level: 'info', msg: 'nats connection closed', nats: 'nats-test' }),
    ]);
  });
});

describe('drainNats', () => {
  it('tolerates a connection that is already closed', async () => {
    const nc = await connectQuietly();
    await nc.close();

    await expect(drainNats(nc)).resolves.toBeUndefined();
  });

  it('waits for a drain already under way', async () => {
    const nc = await connectQuietly();
    const first = nc.drain();

    await drainNats(nc);

    expect(nc.isClosed()).toBe(true);
    await first;
  });
});
