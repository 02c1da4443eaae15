import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '@aifactory/config';
import { generateAssertionKey, signAssertion, startJwksServer, type JwksServer } from '@aifactory/dev-identity';
import { createLogger } from '@aifactory/logging';
import { freePort, tempKeyDir, type TempKeys } from '@aifactory/testing';
import { gatewayConfigSchema } from '../src/config.js';
import { startGateway, type RunningGateway } from '../src/server.js';

const SUPERGRAPH_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'supergraph.graphql');

describe('gateway readiness', () => {
  let keys: TempKeys;
  let gateway: RunningGateway;
  let jwks: JwksServer | undefined;

  afterAll(async () => {
    await gateway?.close();
    await jwks?.close();
    await keys?.cleanup();
  });

  it('is not ready, and refuses with 503, until the identity provider key set is fetched; then it serves', async () => {
    keys = await tempKeyDir();
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
      LOG_LEVEL: 'silent',
    });
    gateway = await startGateway(config, createLogger({ service: 'gateway', level: 'silent' }));

    const notReady = await fetch(`${gateway.url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ status: 'not_ready', missing: ['jwks'] });
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);

    const key = await generateAssertionKey();
    const assertion = await signAssertion(key, { issuer: 'https://idp.test', audience: 'gateway.test', subject: 'u1', email: 'u1@example.com' });
    const refused = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-pomerium-jwt-assertion': assertion },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]!.extensions.code).toBe('SERVICE_NOT_READY');

    jwks = await startJwksServer([key], jwksPort);
    const deadline = Date.now() + 5_000;
    let status = 0;
    while (Date.now() < deadline && status !== 200) {
      status = (await fetch(`${gateway.url}/readyz`)).status;
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(status).toBe(200);
    const served = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-pomerium-jwt-assertion': assertion },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expect(served.status).toBe(200);
    expect(await served.json()).toEqual({ data: { __typename: 'Query' } });
  });
});
