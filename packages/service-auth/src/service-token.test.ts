import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { ManualClock } from '@aifactory/clock';
import { AppError } from '@aifactory/errors';
import { CompactSigner, InternalTokenSigner, InternalTokenVerifier, INTERNAL_JWT_MAX_TTL_SECONDS, type VerifiedInternalCall } from './internal-jwt.js';
import { keyIdOf, type SigningKey } from './keys.js';
import type { Principal } from './principal.js';
import type { ServiceIdentityRecord } from './service-identity.js';
import { delegationOf, ServiceTokenIssuer } from './service-token.js';

interface Credential {
  signing: SigningKey;
  publicKey: KeyObject;
  listed: { kid: string; publicKeyPem: string };
}

async function credential(): Promise<Credential> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const kid = await keyIdOf(publicKey);
  return { signing: { kid, privateKey }, publicKey, listed: { kid, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string } };
}

function identity(name: string, cred: Credential, overrides: Partial<ServiceIdentityRecord> = {}): ServiceIdentityRecord {
  return { name, status: 'active', scopes: ['platform:billing:read'], audiences: ['billing'], keys: [cred.listed], ...overrides };
}

async function codeOf(promise: Promise<unknown>): Promise<{ code: string; reason: unknown }> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(AppError);
  return { code: (error as AppError).code, reason: ((error as AppError).details as { reason?: unknown } | undefined)?.reason };
}

const user: Principal = {
  type: 'user',
  subject: 'https://idp.test|alice',
  email: 'alice@example.com',
  platformRoles: ['platform_admin'],
  grants: [{ level: 'organization', id: 'org-1', role: 'org_admin' }],
  organizationId: 'org-1',
};

describe('service tokens', () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 1));
  let gatewayKey: Credential;
  let tokenfactory: Credential;
  let billing: Credential;
  let identities: Map<string, ServiceIdentityRecord>;

  beforeEach(async () => {
    gatewayKey = await credential();
    tokenfactory = await credential();
    billing = await credential();
    identities = new Map([
      ['tokenfactory', identity('tokenfactory', tokenfactory)],
      ['billing', identity('billing', billing, { scopes: ['platform:organization:read'], audiences: ['iam'] })],
    ]);
  });

  function verifierFor(audience: string, issuers = ['gateway']): InternalTokenVerifier {
    return new InternalTokenVerifier({
      audience,
      issuers,
      keys: { get: (kid) => (kid === gatewayKey.signing.kid ? gatewayKey.publicKey : undefined), kids: [gatewayKey.signing.kid] },
      serviceIdentities: (name) => identities.get(name),
      clock,
    });
  }

  function issuer(service: string, cred: Credential, withIdentity = false): ServiceTokenIssuer {
    return new ServiceTokenIssuer({
      service,
      key: cred.signing,
      clock,
      ...(withIdentity ? { identity: () => identities.get(service) } : {}),
    });
  }

  it('carries the calling service as iss, the one target as aud, its scopes and a life of at most 60 s', async () => {
    const token = await new ServiceTokenIssuer({ service: 'tokenfactory', key: tokenfactory.signing, ttlSeconds: 3600, clock }).mint({
      audience: 'billing',
      scopes: ['platform:billing:read'],
      correlationId: 'corr-0001',
    });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ iss: 'tokenfactory', aud: 'billing', sub: 'tokenfactory', ptype: 'service', roles: [], grants: [], scopes: ['platform:billing:read'], cid: 'corr-0001' });
    expect(claims.act).toBeUndefined();
    expect(claims.exp! - claims.iat!).toBe(INTERNAL_JWT_MAX_TTL_SECONDS);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'EdDSA', kid: tokenfactory.signing.kid });

    const call = await verifierFor('billing').verify(token);
    expect(call).toEqual({
      principal: { type: 'service', subject: 'tokenfactory', platformRoles: [], grants: [], scopes: ['platform:billing:read'] },
      issuer: 'tokenfactory',
      correlationId: 'corr-0001',
      actor: undefined,
      credential: 'service_identity',
    });
  });

  it('is refused by any service it was not minted for: a token for billing does not open gpuaas', async () => {
    identities.set('tokenfactory', identity('tokenfactory', tokenfactory, { audiences: ['billing', 'gpuaas'] }));
    const token = await issuer('tokenfactory', tokenfactory).mint({ audience: 'billing', scopes: [], correlationId: 'corr-0001' });
    expect(await codeOf(verifierFor('gpuaas').verify(token))).toMatchObject({ code: 'INTERNAL_AUTH_UNAUTHENTICATED' });
    await expect(verifierFor('billing').verify(token)).resolves.toMatchObject({ issuer: 'tokenfactory' });
  });

  it('is refused where the identity may not call, even when aud names that service', async () => {
    const token = await issuer('tokenfactory', tokenfactory).mint({ audience: 'gpuaas', scopes: [], correlationId: 'corr-0001' });
    expect(await codeOf(verifierFor('gpuaas').verify(token))).toEqual({ code: 'INTERNAL_AUTH_AUDIENCE_NOT_ALLOWED', reason: undefined });
  });

  it('is refused at once when the identity is disabled, and again accepted once it is enabled', async () => {
    const verifier = verifierFor('billing');
    const token = await issuer('tokenfactory', tokenfactory).mint({ audience: 'billing', scopes: [], correlationId: 'corr-0001' });
    await expect(verifier.verify(token)).resolves.toBeDefined();
    identities.set('tokenfactory', identity('tokenfactory', tokenfactory, { status: 'disabled' }));
    expect((await codeOf(verifier.verify(token))).code).toBe('INTERNAL_AUTH_SERVICE_DISABLED');
    identities.set('tokenfactory', identity('tokenfactory', tokenfactory));
    await expect(verifier.verify(token)).resolves.toBeDefined();
    identities.delete('tokenfactory');
    expect(await codeOf(verifier.verify(token))).toEqual({ code: 'INTERNAL_AUTH_UNAUTHENTICATED', reason: 'unknown_service' });
  });

  it('honours a disable that arrives while the signature is being checked', async () => {
    let lookups = 0;
    const verifier = new InternalTokenVerifier({
      audience: 'billing',
      issuers: ['gateway'],
      keys: { get: () => undefined, kids: [] },
      // The second look (after the signature) sees the identity disabled.
      serviceIdentities: (name) => (++lookups === 1 ? identities.get(name) : { ...identities.get(name)!, status: 'disabled' }),
      clock,
    });
    const token = await issuer('tokenfactory', tokenfactory).mint({ audience: 'billing', scopes: [], correlationId: 'corr-0001' });
    expect((await codeOf(verifier.verify(token))).code).toBe('INTERNAL_AUTH_SERVICE_DISABLED');
  });

  it('refuses a kid the identity does not list, and accepts both keys while its credential rotates', async () => {
    const next = await credential();
    const verifier = verifierFor('billing');
    const withNext = await issuer('tokenfactory', next).mint({ audience: 'billing', scopes: [], correlationId: 'corr-0001' });
    expect((await codeOf(verifier.verify(withNext))).code).toBe('INTERNAL_AUTH_UNAUTHENTICATED');
    identities.set('tokenfactory', identity('tokenfactory', tokenfactory, { keys: [tokenfactory.listed, next.listed] }));
    const withOld = await issuer('tokenfactory', tokenfactory).mint({ audience: 'billing', scopes: [], correlationId: 'corr-0001' });
    await expect(verifier.verify(withNext)).resolves.toBeDefined();
    await expect(verifier.verify(withOld)).resolves.toBeDefined();
    identities.set('tokenfactory', identity('tokenfactory', tokenfactory, { keys: [next.listed] }));
    expect((await codeOf(verifier.verify(withOld))).code).toBe('INTERNAL_AUTH_UNAUTHENTICATED');
  });

  it('refuses an entry that pairs a kid with some other key', async () => {
    const other = await credential();
    identities.set('tokenfactory', identity('tokenfactory', tokenfactory, { keys: [{ kid: tokenfactory.listed.kid, publicKeyPem: other.listed.publicKeyPem }] }));
    const token = await issuer('tokenfactory', tokenfactory).mint({ audience: 'billing', scopes: [], correlationId: 'corr-0001' });
    expect((await codeOf(verifierFor('billing').verify(token))).code).toBe('INTERNAL_AUTH_UNAUTHENTICATED');
  });

  it('refuses scopes beyond the identity, and the issuer refuses to mint them when it knows its identity', async () => {
    const token = await issuer('tokenfactory', tokenfactory).mint({
      audience: 'billing',
      scopes: ['platform:billing:read', 'platform:billing:write'],
      correlationId: 'corr-0001',
    });
    const error = (await verifierFor('billing').verify(token).catch((caught: unknown) => caught)) as AppError;
    expect(error.code).toBe('INTERNAL_AUTH_SCOPE_NOT_ALLOWED');
    expect(error.details).toEqual({ service: 'tokenfactory', scopes: ['platform:billing:write'] });

    const checked = issuer('tokenfactory', tokenfactory, true);
    expect(
      (await codeOf(checked.mint({ audience: 'billing', scopes: ['platform:billing:write'], correlationId: 'corr-0001' }))).code,
    ).toBe('INTERNAL_AUTH_SCOPE_NOT_ALLOWED');
    expect((await codeOf(checked.mint({ audience: 'iam', scopes: [], correlationId: 'corr-0001' }))).code).toBe('INTERNAL_AUTH_AUDIENCE_NOT_ALLOWED');
    identities.set('tokenfactory', identity('tokenfactory', tokenfactory, { status: 'disabled' }));
    expect((await codeOf(checked.mint({ audience: 'billing', scopes: [], correlationId: 'corr-0001' }))).code).toBe('INTERNAL_AUTH_SERVICE_DISABLED');
  });

  it('never lets a service identity pass as the gateway', async () => {
    // A read-model entry named `gateway`, with a key the attacker holds.
    const rogue = await credential();
    identities.set('gateway', identity('gateway', rogue, { audiences: ['iam'], scopes: [] }));
    const asGateway = new CompactSigner(rogue.signing).sign({
      iss: 'gateway',
      aud: 'iam',
      sub: 'gateway',
      iat: Math.floor(clock.nowMs() / 1000),
      exp: Math.floor(clock.nowMs() / 1000) + 30,
      ver: 1,
      ptype: 'service',
      roles: [],
      grants: [],
      cid: 'corr-0001',
    });
    expect((await codeOf(verifierFor('iam').verify(asGateway))).code).toBe('INTERNAL_AUTH_UNAUTHENTICATED');
    expect(() => new ServiceTokenIssuer({ service: 'gateway', key: rogue.signing })).toThrow(RangeError);

    // `gateway` stays reserved even where the gateway signs under another configured name.
    const rogueIssuer = new CompactSigner(rogue.signing);
    const now = Math.floor(clock.nowMs() / 1000);
    const reservedName = rogueIssuer.sign({ iss: 'gateway', aud: 'iam', sub: 'gateway', iat: now, exp: now + 30, ver: 1, ptype: 'service', roles: [], grants: [], scopes: [], cid: 'corr-0001' });
    expect(await codeOf(verifierFor('iam', ['edge']).verify(reservedName))).toEqual({ code: 'INTERNAL_AUTH_UNAUTHENTICATED', reason: 'issuer' });

    // Any configured issuer is reserved the same way, whatever it is called.
    identities.set('edge', identity('edge', rogue, { audiences: ['iam'], scopes: [] }));
    const asEdge = await issuer('edge', rogue).mint({ audience: 'iam', scopes: [], correlationId: 'corr-0001' });
    expect((await codeOf(verifierFor('iam', ['edge']).verify(asEdge))).code).toBe('INTERNAL_AUTH_UNAUTHENTICATED');

    // And a real service cannot name the gateway as itself: its principal stays the service.
    const claimsGateway = new CompactSigner(tokenfactory.signing).sign({
      iss: 'tokenfactory',
      aud: 'billing',
      sub: 'gateway',
      iat: Math.floor(clock.nowMs() / 1000),
      exp: Math.floor(clock.nowMs() / 1000) + 30,
      ver: 1,
      ptype: 'service',
      roles: [],
      grants: [],
      cid: 'corr-0001',
    });
    expect(await codeOf(verifierFor('billing').verify(claimsGateway))).toEqual({ code: 'INTERNAL_AUTH_UNAUTHENTICATED', reason: 'claims' });
  });

  it('refuses a service token that claims a user type, roles or grants', async () => {
    const now = Math.floor(clock.nowMs() / 1000);
    const base = { iss: 'tokenfactory', aud: 'billing', sub: 'tokenfactory', iat: now, exp: now + 30, ver: 1, cid: 'corr-0001' };
    const signer = new CompactSigner(tokenfactory.signing);
    for (const claims of [
      { ...base, ptype: 'user', roles: [], grants: [] },
      { ...base, ptype: 'service', roles: ['platform_admin'], grants: [] },
      { ...base, ptype: 'service', roles: [], grants: [{ level: 'organization', id: 'org-1', role: 'org_admin' }] },
      // The acting service must be the one that signed.
      { ...base, sub: 'alice', ptype: 'service', roles: [], grants: [], act: { sub: 'billing' }, obo: { ptype: 'user' } },
    ]) {
      expect(await codeOf(verifierFor('billing').verify(signer.sign(claims)))).toEqual({ code: 'INTERNAL_AUTH_UNAUTHENTICATED', reason: 'claims' });
    }
  });

  it('refuses an expired service token and one with a lifetime above 60 s', async () => {
    const token = await issuer('tokenfactory', tokenfactory).mint({ audience: 'billing', scopes: [], correlationId: 'corr-0001' });
    const later = new ManualClock(clock.nowMs() + 61_000);
    const verifier = new InternalTokenVerifier({ audience: 'billing', issuers: ['gateway'], keys: { get: () => undefined, kids: [] }, serviceIdentities: (name) => identities.get(name), clock: later });
    expect((await codeOf(verifier.verify(token))).code).toBe('INTERNAL_AUTH_UNAUTHENTICATED');
  });

  it('shows the party acted for and the whole act chain, per RFC 8693', async () => {
    // The gateway's token for alice, as tokenfactory sees it.
    const gatewayToken = await new InternalTokenSigner({ issuer: 'gateway', key: gatewayKey.signing, clock }).mint({
      audience: 'tokenfactory',
      principal: user,
      correlationId: 'corr-0001',
    });
    const atTokenfactory = await verifierFor('tokenfactory').verify(gatewayToken);
    expect(atTokenfactory.credential).toBe('platform');

    // tokenfactory reserves funds in billing for alice.
    const toBilling = await issuer('tokenfactory', tokenfactory).mint({
      audience: 'billing',
      scopes: ['platform:billing:read'],
      correlationId: atTokenfactory.correlationId,
      onBehalfOf: delegationOf(atTokenfactory),
    });
    expect(decodeJwt(toBilling)).toMatchObject({ sub: user.subject, ptype: 'service', act: { sub: 'tokenfactory' }, obo: { ptype: 'user', org: 'org-1' } });
    const atBilling = await verifierFor('billing').verify(toBilling);
    expect(atBilling).toEqual({
      principal: {
        type: 'service',
        subject: 'tokenfactory',
        platformRoles: [],
        grants: [],
        scopes: ['platform:billing:read'],
        onBehalfOf: { type: 'user', subject: user.subject, organizationId: 'org-1' },
        actorChain: ['tokenfactory'],
      },
      issuer: 'tokenfactory',
      correlationId: 'corr-0001',
      actor: { sub: 'tokenfactory' },
      credential: 'service_identity',
    } satisfies VerifiedInternalCall);

    // billing asks iam about alice's organization, still for alice.
    const toIam = await issuer('billing', billing).mint({
      audience: 'iam',
      scopes: ['platform:organization:read'],
      correlationId: atBilling.correlationId,
      onBehalfOf: delegationOf(atBilling),
    });
    expect(decodeJwt(toIam)).toMatchObject({ sub: user.subject, act: { sub: 'billing', act: { sub: 'tokenfactory' } } });
    const atIam = await verifierFor('iam').verify(toIam);
    expect(atIam.principal).toMatchObject({ subject: 'billing', onBehalfOf: { type: 'user', subject: user.subject }, actorChain: ['billing', 'tokenfactory'] });
    expect(atIam.actor).toEqual({ sub: 'billing', act: { sub: 'tokenfactory' } });
    // The user's roles and grants never travel with a service's token.
    expect(atIam.principal.platformRoles).toEqual([]);
    expect(atIam.principal.grants).toEqual([]);
  });

  it('acts for an API key with its project and key id visible', async () => {
    const keyCall: VerifiedInternalCall = {
      principal: { type: 'service_account', subject: 'sa-1', apiKeyId: 'key-1', projectId: 'p-1', organizationId: 'o-1', departmentId: 'd-1', platformRoles: [], grants: [], scopes: ['x:y:z'] },
      issuer: 'gateway',
      correlationId: 'corr-0001',
      actor: undefined,
    };
    const token = await issuer('tokenfactory', tokenfactory).mint({ audience: 'billing', scopes: [], correlationId: 'corr-0001', onBehalfOf: delegationOf(keyCall) });
    const call = await verifierFor('billing').verify(token);
    expect(call.principal.onBehalfOf).toEqual({ type: 'service_account', subject: 'sa-1', apiKeyId: 'key-1', projectId: 'p-1', organizationId: 'o-1', departmentId: 'd-1' });
    expect(call.principal.scopes).toEqual([]);
  });

  it('refuses to build a chain deeper than five services', async () => {
    let actor: { sub: string; act?: unknown } | undefined;
    for (const name of ['a', 'b', 'c', 'd', 'e']) actor = actor === undefined ? { sub: name } : { sub: name, act: actor };
    const deep: VerifiedInternalCall = {
      principal: { type: 'service', subject: 'e', platformRoles: [], grants: [], onBehalfOf: { type: 'user', subject: 'alice' } },
      issuer: 'e',
      correlationId: 'corr-0001',
      actor: actor as VerifiedInternalCall['actor'],
    };
    expect((await codeOf(issuer('tokenfactory', tokenfactory).mint({ audience: 'billing', scopes: [], correlationId: 'c', onBehalfOf: delegationOf(deep) }))).code).toBe(
      'INTERNAL_ERROR',
    );
  });

  it('accepts only configured issuers when no service identities are given', async () => {
    const verifier = new InternalTokenVerifier({ audience: 'billing', issuers: ['gateway'], keys: { get: () => undefined, kids: [] }, clock });
    const token = await issuer('tokenfactory', tokenfactory).mint({ audience: 'billing', scopes: [], correlationId: 'corr-0001' });
    expect(await codeOf(verifier.verify(token))).toEqual({ code: 'INTERNAL_AUTH_UNAUTHENTICATED', reason: 'issuer' });
  });
});
