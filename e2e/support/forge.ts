import { createHmac, createPublicKey } from 'node:crypto';
import type { AssertionKey } from '@aifactory/dev-identity';
import { publicJwkOf } from '@aifactory/dev-identity';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function claims(issuer: string, audience: string) {
  const now = Math.floor(Date.now() / 1000);
  return { iss: issuer, aud: audience, sub: 'mallory', email: 'mallory@example.com', groups: ['test-platform-admins'], iat: now, exp: now + 600 };
}

/** An unsigned token (`alg: none`) carrying otherwise valid claims. */
export function unsignedAssertion(kid: string, issuer: string, audience: string): string {
  return `${b64({ alg: 'none', typ: 'JWT', kid })}.${b64(claims(issuer, audience))}.`;
}

/** The classic key-confusion forgery: HS256 with the published public key as the HMAC secret. */
export function hmacWithPublicKey(key: AssertionKey, issuer: string, audience: string): string {
  const publicPem = createPublicKey({ key: publicJwkOf(key) as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
  const signingInput = `${b64({ alg: 'HS256', typ: 'JWT', kid: key.kid })}.${b64(claims(issuer, audience))}`;
  const signature = createHmac('sha256', publicPem).update(signingInput).digest('base64url');
  return `${signingInput}.${signature}`;
}
