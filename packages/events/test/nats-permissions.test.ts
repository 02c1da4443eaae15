import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { streamDeclarations } from '@aifactory/contracts';
import { startPrivateNats, type PrivateNats } from '@aifactory/testing';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { PermissionViolationError, RequestError, type NatsConnection } from '@nats-io/transport-node';
import { classifyPublishError, ensureStreams } from '../src/index.js';
import { connectTo } from './support.js';

const CONFIG = fileURLToPath(new URL('../../../deploy/nats/nats-server.conf', import.meta.url));
const SERVICES = ['gateway', 'iam', 'billing', 'evidence', 'gpuaas', 'appplatform', 'tokenfactory'] as const;
const passwords = Object.fromEntries(SERVICES.map((service) => [service, `pw-${service}-${randomUUID()}`])) as Record<
  (typeof SERVICES)[number],
  string
>;

let nats: PrivateNats;
const connections: NatsConnection[] = [];

async function connectAs(service: (typeof SERVICES)[number]): Promise<NatsConnection> {
  const nc = await connectTo(nats, { user: service, pass: passwords[service] });
  connections.push(nc);
  return nc;
}

beforeAll(async () => {
  nats = await startPrivateNats({
    config: CONFIG,
    env: Object.fromEntries(SERVICES.map((service) => [`${service.toUpperCase()}_NATS_PASSWORD`, passwords[service]])),
  });
  // Any service may declare the streams at start: the JetStream API is open to all.
  await ensureStreams(await jetstreamManager(await connectAs('iam')), streamDeclarations());
});

afterAll(async () => {
  await Promise.all(connections.map((nc) => nc.close()));
  await nats?.dispose();
});

describe('the shipped NATS permissions', () => {
  it("let iam publish its own organization events", async () => {
    const ack = await jetstream(await connectAs('iam')).publish('platform.iam.organization.updated', '{}', { msgID: randomUUID() });
    expect(ack.stream).toBe('PLATFORM_IAM');
  });

  it("refuse billing a publish into Token Factory's usage family", async () => {
    const publish = jetstream(await connectAs('billing')).publish('tokenfactory.usage.x', '{}', { msgID: randomUUID(), timeout: 2_000 });

    const error = await publish.then(() => undefined, (reason: unknown) => reason);
    expect(error).toBeInstanceOf(RequestError);
    expect((error as RequestError).cause).toBeInstanceOf(PermissionViolationError);
    expect(classifyPublishError(error)).toEqual({ kind: 'rejected', reason: 'permission violation publishing to tokenfactory.usage.x' });
  });

  it("refuse a service another's audit prefix but allow its own", async () => {
    const js = jetstream(await connectAs('billing'));

    await expect(js.publish('platform.audit.billing.ledger_posted', '{}', { msgID: randomUUID() })).resolves.toMatchObject({
      stream: 'PLATFORM_AUDIT',
    });
    await expect(js.publish('platform.audit.iam.member_added', '{}', { msgID: randomUUID(), timeout: 2_000 })).rejects.toMatchObject({
      cause: expect.any(PermissionViolationError),
    });
  });

  it('refuse a client without credentials', async () => {
    await expect(connectTo(nats).then((nc) => nc.close())).rejects.toThrow(/authorization/i);
  });
});
