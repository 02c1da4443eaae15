import { generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint, decodeJwt, exportJWK, SignJWT } from 'jose';
import { ManualClock } from '@aifactory/clock';
import { AppError } from '@aifactory/errors';
import { InternalTokenSigner, InternalTokenVerifier, INTERNAL_JWT_MAX_TTL_SECONDS } from './internal-jwt.js';
import type { SigningKey, VerificationKeySet } from './keys.js';
import type { Principal } from './principal.js';

async function keyPair(): Promise<{ signing: SigningKey; keys: VerificationKeySet }> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  return { signing: { kid, privateKey }, keys: { get: (id) => (id === kid ? publicKey : undefined), kids: [kid] } };
}

/** A token signed with a trusted key but built by hand, to break one rule at a time. */
function handMade(signing: SigningKey, claims: Record<string, unknown>, lifetimeSeconds: number, now: number): Promise<string> {
  return new SignJWT({ ptype: 'user', roles: [], grants: [], cid: 'corr-1234', ...claims })
    .setProtectedHeader({ alg: 'EdDSA', kid: signing.kid })
    .setIssuer('gateway')
    .setAudience('iam')
    .setSubject('user-1')
    .setIssuedAt(now)
    .setExpirationTime(now + lifetimeSeconds)
    .sign(signing.privateKey);
}

const principal: Principal = {
  type: 'user',
  subject: 'user-1',
  email: 'a@example.com',
  platformRoles: ['platform_admin'],
  grants: [{ level: 'organization', id: 'org-1', role: 'org_admin' }],
};

describe('internal JWT', () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 1));

  it('carries the principal, correlation id and acting service to the one audience it was minted for', async () => {
    const { signing, keys } = await keyPair();
    const token = await new InternalTokenSigner({ issuer: 'gateway', key: signing, clock }).mint({
      audience: 'billing',
      principal,
      correlationId: 'corr-1234',
      actor: { sub: 'svc:rating' },
    });
    const verified = await new InternalTokenVerifier({ audience: 'billing', issuers: ['gateway'], keys, clock }).verify(token);
    expect(verified).toEqual({ principal, issuer: 'gateway', correlationId: 'corr-1234', actor: { sub: 'svc:rating' }, credential: 'platform' });
  });

  it('never lives longer than 60 s, whatever the signer is asked', async () => {
    const { signing } = await keyPair();
    const token = await new InternalTokenSigner({ issuer: 'gateway', key: signing, ttlSeconds: 3600, clock }).mint({
      audience: 'iam',
      principal,
      correlationId: 'corr-1234',
    });
    const claims = decodeJwt(token);
    expect(claims.exp! - claims.iat!).toBe(INTERNAL_JWT_MAX_TTL_SECONDS);
  });

  it('refuses a token once it has expired by the clock', async () => {
    const { signing, keys } = await keyPair();
    const token = await new InternalTokenSigner({ issuer: 'gateway', key: signing, ttlSeconds: 30, clock }).mint({
      audience: 'iam',
      principal,
      correlationId: 'corr-1234',
    });
    const later = new ManualClock(clock.nowMs());
    later.advance(31_000);
    await expect(new InternalTokenVerifier({ audience: 'iam', issuers: ['gateway'], keys, clock: later }).verify(token)).rejects.toMatchObject({
      code: 'INTERNAL_AUTH_UNAUTHENTICATED',
    });
  });

  it('refuses a validly signed token that claims a longer life than 60 s', async () => {
    const { signing, keys } = await keyPair();
    const now = Math.floor(clock.nowMs() / 1000);
    const token = await handMade(signing, { ver: 1 }, 3600, now);
    const error = await new InternalTokenVerifier({ audience: 'iam', issuers: ['gateway'], keys, clock }).verify(token).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('INTERNAL_AUTH_UNAUTHENTICATED');
  });

  it('refuses claims of an unknown layout version', async () => {
    const { signing, keys } = await keyPair();
    const now = Math.floor(clock.nowMs() / 1000);
    const token = await handMade(signing, { ver: 2 }, 30, now);
    await expect(new InternalTokenVerifier({ audience: 'iam', issuers: ['gateway'], keys, clock }).verify(token)).rejects.toMatchObject({
      details: { reason: 'claims' },
    });
  });
});
