import { randomBytes, randomUUID } from 'node:crypto';
import { generateAssertionKey, signAssertion, startJwksServer, type AssertionKey, type JwksServer } from '@aifactory/dev-identity';
import {
  ensureNatsPasswords,
  NATS_SERVER_CONFIG,
  natsPasswordEnvironment,
  runDevSeed,
  startPlatform,
  SUBGRAPH_STARTERS,
  type NatsPasswords,
  type RunningPlatform,
  type SeedResult,
} from '@aifactory/devstack';
import { createLogger } from '@aifactory/logging';
import {
  deleteRedisKeys,
  captureLogs,
  createTestDatabase,
  startPrivateNats,
  tempKeyDir,
  TEST_REDIS_URL,
  type PrivateNats,
  type TempKeys,
  type TestDatabase,
} from '@aifactory/testing';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, PermissionViolationError, type NatsConnection } from '@nats-io/transport-node';

const ISSUER = 'https://authenticate.nats-wiring.test.localhost';
const AUDIENCE = 'aifactory.nats-wiring.test.localhost';
const ADMIN_GROUP = 'nats-wiring-platform-admins';
/** iam's relay wakes on NOTIFY at commit; its 2 s poll is the fallback this leaves room for. */
const PUBLISHED_WITHIN_MS = 10_000;

// The shipped config allows each service its own families with no subject
// prefix, so this platform runs unprefixed: safe, the NATS is its own.
describe('the platform on NATS with per-service users (DEV_NATS_PERMISSIONS)', () => {
  let keys: TempKeys;
  let passwords: NatsPasswords;
  let nats: PrivateNats;
  let db: TestDatabase;
  let assertionKey: AssertionKey;
  let jwks: JwksServer;
  let platform: RunningPlatform;
  let seeded: SeedResult;
  const redisKeyPrefix = `aif:test:${randomBytes(6).toString('hex')}:`;
  const connections: NatsConnection[] = [];

  async function connectAs(user: string): Promise<NatsConnection> {
    const nc = await connect({ servers: nats.url, user, pass: passwords[user]!, name: `nats-wiring-test-${user}` });
    connections.push(nc);
    return nc;
  }

  beforeAll(async () => {
    keys = await tempKeyDir();
    // The same passwords file and server environment `npm run up` makes, in a directory of this test's own.
    passwords = await ensureNatsPasswords(keys.dir);
    nats = await startPrivateNats({ config: NATS_SERVER_CONFIG, env: natsPasswordEnvironment(passwords) });
    db = await createTestDatabase();
    const internalKeys = await keys.ed25519('internal');
    assertionKey = await generateAssertionKey();
    jwks = await startJwksServer([assertionKey]);
    const logs = captureLogs();
    platform = await startPlatform(
      {
        layout: db.layout,
        poolSize: 1,
        internalPrivateKeyFile: internalKeys.privateKeyFile,
        internalPublicKeyFiles: [internalKeys.publicKeyFile],
        apiKeyPepperFile: await keys.pepper('api-keys'),
        jwksUrl: jwks.url,
        issuer: ISSUER,
        audience: AUDIENCE,
        roleGroups: { platform_admin: [ADMIN_GROUP] },
        logLevel: 'info',
        jwksCooldownMs: 1,
        redisKeyPrefix,
        nats: { url: nats.url, passwords },
        gatewayOverrides: { REDIS_URL: TEST_REDIS_URL },
      },
      (service) => createLogger({ service, level: 'info', destination: logs.destination }),
    );
    seeded = await runDevSeed(db.layout, { eventSubjectPrefix: '' });
  });

  afterAll(async () => {
    await Promise.all(connections.map((nc) => nc.close()));
    await platform?.close();
    await nats?.dispose();
    await jwks?.close();
    await deleteRedisKeys(redisKeyPrefix);
    await db?.drop();
    await keys?.cleanup();
  });

  it('connects every subgraph and the gateway, each as its own user', async () => {
    for (const { name } of SUBGRAPH_STARTERS) {
      const res = await fetch(new URL('/readyz', platform.subgraphUrls[name]));
      const body = (await res.json()) as { dependencies: Record<string, { status: string }> };
      expect({ name, nats: body.dependencies.nats?.status }).toEqual({ name, nats: 'up' });
    }
    const admin = await signAssertion(assertionKey, {
      issuer: ISSUER,
      audience: AUDIENCE,
      subject: 'admin-1',
      email: 'admin@example.com',
      groups: [ADMIN_GROUP],
    });
    const status = await fetch(`${platform.gatewayUrl}/status`, { headers: { 'x-pomerium-jwt-assertion': admin } });
    expect(((await status.json()) as { gateway: Record<string, { status: string }> }).gateway.nats?.status).toBe('up');
  });

  it("publishes the seed's organization.created through iam's relay as the iam user", async () => {
    const subject = 'platform.iam.organization.created';
    const jsm = await jetstreamManager(await connectAs('gateway'));
    const deadline = Date.now() + PUBLISHED_WITHIN_MS;
    let count = 0;
    while (count === 0 && Date.now() < deadline) {
      const info = await jsm.streams.info('PLATFORM_IAM', { subjects_filter: subject });
      count = info.state.subjects?.[subject] ?? 0;
      if (count === 0) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(count).toBe(1);

    const message = await jsm.streams.getMessage('PLATFORM_IAM', { last_by_subj: subject });
    expect(message?.json<{ aggregateId: string }>().aggregateId).toBe(seeded.organizationId);
  });

  it("refuses billing a publish into iam's organization events", async () => {
    const publish = jetstream(await connectAs('billing')).publish('platform.iam.organization.updated', '{}', {
      msgID: randomUUID(),
      timeout: 2_000,
    });

    await expect(publish).rejects.toMatchObject({ cause: expect.any(PermissionViolationError) });
  });
});
