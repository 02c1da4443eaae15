import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { ApiKeyEntry } from '@aifactory/authz';
import { parseConfig } from '@aifactory/config';
import { streamDeclarations } from '@aifactory/contracts';
import { generateAssertionKey, startJwksServer, type JwksServer } from '@aifactory/dev-identity';
import { ensureStreams } from '@aifactory/events';
import { createLogger } from '@aifactory/logging';
import { issueApiKey, PepperRing } from '@aifactory/service-auth';
import { deleteEventStreams, startTcpProxy, tempKeyDir, TEST_NATS_URL, uniqueEventSubjectPrefix, type TcpProxy, type TempKeys } from '@aifactory/testing';
import { gatewayConfigSchema } from '../src/config.js';
import { startGateway, type RunningGateway } from '../src/server.js';
import { TEST_CATALOG, TestReadModel } from './access-model-fixture.js';

const SUPERGRAPH_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'supergraph.graphql');
const KEY_MAX_AGE_MS = 1_500;

async function poll<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('a gateway cut off from NATS', () => {
  const prefix = uniqueEventSubjectPrefix();
  let keys: TempKeys;
  let jwks: JwksServer;
  let nc: NatsConnection;
  let model: TestReadModel;
  let stopBeating: (() => void) | undefined;
  let proxy: TcpProxy;
  let gateway: RunningGateway;

  afterAll(async () => {
    proxy?.restore();
    await gateway?.close();
    await proxy?.close();
    stopBeating?.();
    await model?.delete();
    await nc?.close();
    await deleteEventStreams(prefix);
    await jwks?.close();
    await keys?.cleanup();
  });

  it('fails key requests closed after the freshness budget, and serves them again, revocations included, when NATS returns', async () => {
    keys = await tempKeyDir();
    const internal = await keys.ed25519('internal');
    const pepperFile = await keys.pepper('api-keys');
    const pepper = await PepperRing.load(pepperFile, { reloadEveryMs: 0 });
    jwks = await startJwksServer([await generateAssertionKey()]);
    nc = await connect({ servers: TEST_NATS_URL, name: 'gateway-nats-cut-test' });
    await ensureStreams(await jetstreamManager(nc), streamDeclarations({ subjectPrefix: prefix }));
    model = await TestReadModel.open(nc, prefix);
    // iam keeps beating on its own connection; only the gateway is cut off.
    stopBeating = model.publisher.startHeartbeat(200, () => ({ at: new Date().toISOString(), catalogVersion: TEST_CATALOG.version, policyVersion: 1 }));
    const natsUrl = new URL(TEST_NATS_URL);
    proxy = await startTcpProxy(natsUrl.hostname, Number(natsUrl.port || 4222), { scheme: 'nats' });

    const key = issueApiKey('test');
    const entry: ApiKeyEntry = {
      keyId: key.keyId,
      serviceAccountId: randomUUID(),
      organizationId: randomUUID(),
      departmentId: randomUUID(),
      projectId: randomUUID(),
      scopes: [],
      status: 'active',
      expiresAt: null,
      graceUntil: null,
      hash: pepper.hash(key.secret, 1),
      pepperVersion: 1,
      registryVersion: 1,
      version: 1,
      updatedAt: new Date().toISOString(),
    };
    await model.putKey(entry);
    const other = issueApiKey('test');
    await model.putKey({ ...entry, keyId: other.keyId, hash: pepper.hash(other.secret, 1) });

    gateway = await startGateway(
      parseConfig(gatewayConfigSchema, {
        PORT: '0',
        SUPERGRAPH_FILE,
        POMERIUM_JWKS_URL: jwks.url,
        POMERIUM_ISSUER: 'https://idp.test',
        POMERIUM_AUDIENCE: 'gateway.test',
        INTERNAL_JWT_PRIVATE_KEY_FILE: internal.privateKeyFile,
        API_KEY_PEPPER_FILE: pepperFile,
        API_KEY_MODEL_MAX_AGE_MS: String(KEY_MAX_AGE_MS),
        NATS_URL: proxy.url ?? '',
        EVENT_SUBJECT_PREFIX: prefix,
        REDIS_KEY_PREFIX: `aif:test:${randomBytes(6).toString('hex')}:`,
        LOG_LEVEL: 'silent',
      }),
      createLogger({ service: 'gateway', level: 'silent' }),
    );
    await gateway.accessModel.whenReady();
    const outcome = async (raw = key.raw) => {
      const res = await fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${raw}` },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      const body = (await res.json()) as { errors?: Array<{ extensions: { code: string } }> };
      return `${res.status} ${body.errors?.[0]?.extensions.code ?? 'ok'}`;
    };
    await poll('the key to work', async () => ((await outcome()) === '200 ok' ? true : undefined));

    proxy.cut();
    const cutAt = Date.now();
    await poll('key requests to fail closed', async () => ((await outcome()) === '503 AUTH_READ_MODEL_STALE' ? true : undefined), 10_000);
    // Not before the budget: within it the last copy still answers.
    expect(Date.now() - cutAt).toBeGreaterThanOrEqual(KEY_MAX_AGE_MS - 500);
    // A revocation while the gateway cannot hear it.
    await model.putKey({ ...entry, status: 'revoked', version: 2 });

    proxy.restore();
    await poll('the revocation to arrive with NATS', async () => ((await outcome()) === '401 AUTH_API_KEY_REVOKED' ? true : undefined), 30_000);
    expect(await outcome(other.raw)).toBe('200 ok');
    pepper.close();
  });
});
