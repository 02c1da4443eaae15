import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadSigningKey } from '@aifactory/service-auth';
import { ensureDevKeys, serviceCredentialPublicKeys } from '../src/dev-keys.js';
import { subgraphEnvironment, type PlatformWiring } from '../src/wiring.js';

describe('dev service credentials', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'aif-dev-keys-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('makes one owner-only Ed25519 credential per subgraph, once', async () => {
    const keys = await ensureDevKeys(dir);
    expect(Object.keys(keys.serviceCredentialFiles).sort()).toEqual(['appplatform', 'billing', 'evidence', 'gpuaas', 'iam', 'tokenfactory']);
    for (const [service, file] of Object.entries(keys.serviceCredentialFiles)) {
      expect(path.basename(file)).toBe(`service-${service}.key.pem`);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      await expect(loadSigningKey(file)).resolves.toBeDefined();
    }
    const before = await readFile(keys.serviceCredentialFiles.billing!, 'utf8');
    await ensureDevKeys(dir);
    expect(await readFile(keys.serviceCredentialFiles.billing!, 'utf8')).toBe(before);

    const published = await serviceCredentialPublicKeys(keys.serviceCredentialFiles);
    const billing = published.find((entry) => entry.service === 'billing')!;
    expect(billing.kid).toBe((await loadSigningKey(keys.serviceCredentialFiles.billing!)).kid);
    expect(billing.publicKeyPem).toContain('BEGIN PUBLIC KEY');
    expect(published.every((entry) => !entry.publicKeyPem.includes('PRIVATE'))).toBe(true);
  });

  it('gives each subgraph its own credential and the other services URLs', async () => {
    const keys = await ensureDevKeys(dir);
    const wiring = {
      layout: { adminUrl: 'postgresql://postgres@127.0.0.1:5432/postgres', database: 'aifactory', rolePrefix: 'aif_' },
      poolSize: 1,
      internalPrivateKeyFile: keys.internalPrivateKeyFile,
      internalPublicKeyFiles: [keys.internalPublicKeyFile],
      apiKeyPepperFile: keys.apiKeyPepperFile,
      serviceCredentialFiles: keys.serviceCredentialFiles,
      serviceUrls: { billing: 'http://127.0.0.1:4002', tokenfactory: 'http://127.0.0.1:4006' },
      jwksUrl: 'http://127.0.0.1:4100/jwks',
      issuer: 'https://idp.test',
      audience: 'aud',
      roleGroups: {},
      logLevel: 'warn',
    } satisfies PlatformWiring;
    const environment = subgraphEnvironment(wiring, 'tokenfactory', 4006);
    expect(environment.SERVICE_CREDENTIAL_FILE).toBe(keys.serviceCredentialFiles.tokenfactory);
    expect(JSON.parse(environment.SERVICE_URLS!)).toEqual({ billing: 'http://127.0.0.1:4002' });
    const without = subgraphEnvironment({ ...wiring, serviceCredentialFiles: undefined, serviceUrls: undefined }, 'billing', 4002);
    expect(without.SERVICE_CREDENTIAL_FILE).toBeUndefined();
    expect(without.SERVICE_URLS).toBeUndefined();
  });
});
