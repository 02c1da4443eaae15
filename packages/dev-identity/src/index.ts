import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, importJWK, SignJWT, type JWK } from 'jose';

/**
 * A stand-in for Pomerium where it cannot run (dev and tests): it signs
 * assertions with its own keys and serves their JWKS, so the gateway's normal
 * verification path is what accepts them. It adds no bypass of any kind.
 */
export const DEV_ASSERTION_ALGORITHM = 'ES256';

export interface AssertionKey {
  kid: string;
  alg: string;
  /** Private JWK, `kid` and `alg` included: the form the dev key file stores. */
  privateJwk: JWK;
}

export async function generateAssertionKey(kid: string = randomUUID()): Promise<AssertionKey> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: DEV_ASSERTION_ALGORITHM, use: 'sig' };
  return { kid, alg: DEV_ASSERTION_ALGORITHM, privateJwk };
}

export function publicJwkOf(key: AssertionKey): JWK {
  const { d: _private, ...publicJwk } = key.privateJwk;
  return publicJwk;
}

export interface AssertionClaims {
  issuer: string;
  audience: string;
  subject: string;
  email: string;
  name?: string;
  groups?: string[];
  /** Defaults to true, as a corporate identity provider says of its own accounts. */
  emailVerified?: boolean;
  /** Seconds from now; negative gives an expired assertion. */
  expiresInSeconds?: number;
}

/** An assertion shaped like Pomerium's `X-Pomerium-Jwt-Assertion`. */
export async function signAssertion(key: AssertionKey, claims: AssertionClaims): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const expiresIn = claims.expiresInSeconds ?? 3600;
  return new SignJWT({
    email: claims.email,
    // Pomerium passes the identity provider's word; invitations are claimed only with a verified email.
    email_verified: claims.emailVerified ?? true,
    name: claims.name ?? claims.email,
    groups: claims.groups ?? [],
  })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(claims.issuer)
    .setAudience(claims.audience)
    .setSubject(claims.subject)
    .setIssuedAt(Math.min(now, now + expiresIn - 60))
    .setExpirationTime(now + expiresIn)
    .setJti(randomUUID())
    .sign(await importJWK(key.privateJwk, key.alg));
}

export const JWKS_PATH = '/.well-known/pomerium/jwks.json';

export interface JwksServer {
  url: string;
  /** Publishes another key; the gateway must pick it up without a restart. */
  publish(key: AssertionKey): void;
  /** How many times the key set was fetched. */
  readonly fetches: number;
  close(): Promise<void>;
}

export async function startJwksServer(keys: AssertionKey[], port = 0, host = '127.0.0.1'): Promise<JwksServer> {
  const published = [...keys];
  let fetches = 0;
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === JWKS_PATH) {
      fetches += 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: published.map(publicJwkOf) }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${bound}${JWKS_PATH}`,
    publish: (key) => {
      published.push(key);
    },
    get fetches() {
      return fetches;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
