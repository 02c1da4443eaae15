import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parseConfig } from '@aifactory/config';
import { generateAssertionKey, signAssertion, startJwksServer, type JwksServer } from '@aifactory/dev-identity';
import { createLogger } from '@aifactory/logging';
import { deleteEventStreams, freePort, tempKeyDir, TEST_NATS_URL, uniqueEventSubjectPrefix, type TempKeys } from '@aifactory/testing';
import { gatewayConfigSchema } from '../src/config.js';
import { startGateway, type RunningGateway } from '../src/server.js';
import { memberEntry, TestReadModel } from './access-model-fixture.js';

const SUPERGRAPH_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'supergraph.graphql');

async function readyz(gateway: RunningGateway): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${gateway.url}/readyz`);
  return { status: res.status, body: await res.json() };
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('gateway readiness', () => {
  const prefix = uniqueEventSubjectPrefix();
  let keys: TempKeys;
  let gateway: RunningGateway;
  let jwks: JwksServer | undefined;
  let nc: NatsConnection;
  let model: TestReadModel | undefined;

  afterAll(async () => {
    await gateway?.close();
    await jwks?.close();
    await model?.delete();
    await nc?.close();
    await deleteEventStreams(prefix);
    await keys?.cleanup();
  });

  it('is not ready, and refuses with 503, until the key set is fetched and the access read model is loaded; then it serves', async () => {
    keys = await tempKeyDir();
    nc = await connect({ servers: TEST_NATS_URL, name: 'gateway-readiness-test' });
    const internal = await keys.ed25519('internal');
    const jwksPort = await freePort();
    const config = parseConfig(gatewayConfigSchema, {
      PORT: '0',
      SUPERGRAPH_FILE,
      POMERIUM_JWKS_URL: `http://127.0.0.1:${jwksPort}/.well-known/pomerium/jwks.json`,
      POMERIUM_ISSUER: 'https://idp.test',
      POMERIUM_AUDIENCE: 'gateway.test',
      POMERIUM_JWKS_RETRY_MS: '50',
      INTERNAL_JWT_PRIVATE_KEY_FILE: internal.privateKeyFile,
      API_KEY_PEPPER_FILE: await keys.pepper('api-keys'),
      NATS_URL: TEST_NATS_URL,
      EVENT_SUBJECT_PREFIX: prefix,
      LOG_LEVEL: 'silent',
    });
    gateway = await startGateway(config, createLogger({ service: 'gateway', level: 'silent' }));

    expect(await readyz(gateway)).toEqual({ status: 503, body: { status: 'not_ready', missing: ['jwks', 'access_model'] } });
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);

    const key = await generateAssertionKey();
    const assertion = await signAssertion(key, { issuer: 'https://idp.test', audience: 'gateway.test', subject: 'u1', email: 'u1@example.com' });
    const post = () =>
      fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-pomerium-jwt-assertion': assertion },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
    const codeOf = async (res: Response) => ((await res.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]!.extensions.code;
    const refused = await post();
    expect(refused.status).toBe(503);
    expect(await codeOf(refused)).toBe('SERVICE_NOT_READY');

    jwks = await startJwksServer([key], jwksPort);
    await until('the key set', async () => (await readyz(gateway)).body !== null && JSON.stringify((await readyz(gateway)).body).includes('"missing":["access_model"]'));
    const stale = await post();
    expect(stale.status).toBe(503);
    expect(await codeOf(stale)).toBe('AUTH_READ_MODEL_STALE');

    // iam starts: the bucket appears, the gateway binds to it and loads it.
    model = await TestReadModel.open(nc, prefix);
    await model.put(memberEntry({ issuer: 'https://idp.test', subject: 'u1' }));
    await model.beat();
    await until('readiness', async () => (await readyz(gateway)).status === 200);
    const served = await post();
    expect(served.status).toBe(200);
    expect(await served.json()).toEqual({ data: { __typename: 'Query' } });
  });
});
