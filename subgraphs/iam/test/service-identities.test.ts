import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { keyIdOf } from '@aifactory/service-auth';
import type { AuditCaller } from '../src/domain/audit.js';
import { registerServicePublicKeys } from '../src/seed/demo.js';
import { openServiceIdentityAdmin } from '../src/service-identity-admin.js';
import { startIamFixture, type IamFixture } from './iam-fixture.js';

let fx: IamFixture;

beforeAll(async () => {
  fx = await startIamFixture();
}, 120_000);

afterAll(async () => {
  await fx?.close();
});

const system = (): AuditCaller => ({ actor: { type: 'system', id: 'test-cli' }, correlationId: `sys-${randomUUID()}` });

function ed25519() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    kid: () => keyIdOf(publicKey),
  };
}

describe('registering a service public key', () => {
  it('names it by its RFC 7638 thumbprint, is idempotent, and is announced and audited without the key', async () => {
    const key = ed25519();
    const origin = system();

    const { identity, kid } = await fx.services.serviceIdentities.registerKey(origin, 'billing', key.publicKeyPem);

    expect(kid).toBe(await key.kid());
    expect(identity.keys.map((entry) => entry.kid)).toContain(kid);
    const again = await fx.services.serviceIdentities.registerKey(system(), 'billing', key.publicKeyPem);
    expect(again.identity.version).toBe(identity.version);
    const events = await fx.eventsOf(origin.correlationId);
    expect(events.map((event) => event.type).sort()).toEqual(['platform.audit.iam.service_identity.key_register', 'platform.iam.service_identity.updated']);
    const updated = events.find((event) => event.type === 'platform.iam.service_identity.updated')!;
    expect(updated.payload).toMatchObject({ name: 'billing', change: 'key_registered', kids: expect.arrayContaining([kid]) });
    expect(JSON.stringify(events)).not.toContain('PUBLIC KEY');
  });

  it('refuses a private key, a key of another type, and a key another identity holds', async () => {
    const key = ed25519();
    const identities = fx.services.serviceIdentities;
    await expect(identities.registerKey(system(), 'billing', key.privateKeyPem)).rejects.toMatchObject({ code: 'BAD_REQUEST_INVALID_INPUT' });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    await expect(identities.registerKey(system(), 'billing', rsa)).rejects.toMatchObject({ code: 'BAD_REQUEST_INVALID_INPUT' });
    await expect(identities.registerKey(system(), 'nobody', key.publicKeyPem)).rejects.toMatchObject({ code: 'NOT_FOUND' });

    await identities.registerKey(system(), 'tokenfactory', key.publicKeyPem);
    await expect(identities.registerKey(system(), 'billing', key.publicKeyPem)).rejects.toMatchObject({ code: 'IAM_DUPLICATE' });
  });

  it('is what the seed does for each service, through the same domain code', async () => {
    const key = ed25519();
    const registered = await registerServicePublicKeys(fx.services, [{ name: 'tokenfactory', publicKeyPem: key.publicKeyPem }]);
    expect(registered).toEqual([{ name: 'tokenfactory', kid: await key.kid() }]);
  });
});

describe('retiring a service public key', () => {
  it('drops it from the usable keys; a retired key is never registered again', async () => {
    const key = ed25519();
    const { kid } = await fx.services.serviceIdentities.registerKey(system(), 'billing', key.publicKeyPem);

    const retired = await fx.services.serviceIdentities.retireKey(system(), 'billing', kid);

    expect(retired.keys.find((entry) => entry.kid === kid)?.retiredAt).toBeInstanceOf(Date);
    await expect(fx.services.serviceIdentities.registerKey(system(), 'billing', key.publicKeyPem)).rejects.toMatchObject({ code: 'IAM_DUPLICATE' });
    await expect(fx.services.serviceIdentities.retireKey(system(), 'billing', 'no-such-kid')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('disabling a service identity', () => {
  it('needs platform:service_identity:manage from a request, and changes nothing the second time', async () => {
    const someone = await fx.signIn(`someone-${randomUUID()}@example.test`);
    await expect(fx.services.serviceIdentities.disable(fx.callerOf(someone), 'billing', 'x')).rejects.toMatchObject({ code: 'AUTH_FORBIDDEN' });

    const caller = fx.platformAdmin();
    const disabled = await fx.services.serviceIdentities.disable(caller, 'billing', 'key leaked');
    const twice = await fx.services.serviceIdentities.disable(fx.platformAdmin(), 'billing', 'again');
    expect(disabled).toMatchObject({ status: 'disabled', disabledReason: 'key leaked' });
    expect(twice.version).toBe(disabled.version);
    const audit = (await fx.eventsOf(caller.correlationId)).find((event) => event.type === 'platform.audit.iam.service_identity.disable');
    expect(audit?.payload).toMatchObject({ scope: 'platform:service_identity:manage', details: { name: 'billing', reason: 'key leaked' } });

    await fx.services.serviceIdentities.enable(fx.platformAdmin(), 'billing');
  });
});

describe('the operators\' service identity admin', () => {
  it('lists identities with their key ids, registers and retires keys, disables and enables', async () => {
    const adminTool = openServiceIdentityAdmin({
      DATABASE_URL: fx.db.appUrl('iam'),
      DB_POOL_SIZE: 1,
      LOG_LEVEL: 'silent',
      EVENT_SUBJECT_PREFIX: fx.subjectPrefix,
    });
    try {
      const key = ed25519();
      const { kid } = await adminTool.registerKey('tokenfactory', key.publicKeyPem);
      expect(kid).toBe(await key.kid());
      expect((await adminTool.list()).find((identity) => identity.name === 'tokenfactory')?.keys.map((entry) => entry.kid)).toContain(kid);
      expect((await adminTool.disable('tokenfactory', 'drill')).status).toBe('disabled');
      expect((await adminTool.enable('tokenfactory')).status).toBe('active');
      const retired = await adminTool.retireKey('tokenfactory', kid);
      expect(retired.keys.find((entry) => entry.kid === kid)?.retiredAt).not.toBeNull();
      expect(JSON.stringify(await adminTool.list())).not.toContain('PRIVATE');
    } finally {
      await adminTool.close();
    }
  });
});
