import type { NatsConnection } from '@nats-io/transport-node';
import { measureColdLoad } from '../src/index.js';
import { connectTestNats } from './fixtures.js';

let nc: NatsConnection;

beforeAll(async () => {
  nc = await connectTestNats('access-model-cold-load-test');
});

afterAll(async () => {
  await nc.close();
});

describe('measureColdLoad', () => {
  // The 100,000-principal figure comes from `npm run bench`; this keeps the suite quick on a shared machine.
  it('loads 20,000 principals into a fresh reader', async () => {
    const measured = await measureColdLoad(nc, 20_000);
    expect(measured.count).toBe(20_000);
    expect(measured.loadMs).toBeLessThan(30_000);
    process.stdout.write(`access model cold load: ${JSON.stringify(measured)}\n`);
  }, 120_000);

  it('loads 20,000 API keys into a fresh reader', async () => {
    const measured = await measureColdLoad(nc, 20_000, 'apiKeys');
    expect(measured).toMatchObject({ kind: 'apiKeys', count: 20_000 });
    process.stdout.write(`access model cold load: ${JSON.stringify(measured)}\n`);
  }, 120_000);
});
