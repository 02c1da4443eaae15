import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { calculateJwkThumbprint, exportJWK } from 'jose';

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
}

/** A signing key that may change while the process runs (a rotation): ask it for the key at each signature. */
export interface SigningKeySource {
  current(): SigningKey;
}

export interface VerificationKeySet {
  get(kid: string): KeyObject | undefined;
  readonly kids: string[];
  /**
   * Re-reads the key files when a token names a kid the set does not hold
   * (a rotation published a key since the last read). Throttled by the set;
   * resolves true when it did read. Absent: the set never changes.
   */
  refresh?(): Promise<boolean>;
}

/**
 * A key's id is its RFC 7638 thumbprint, so the id can never disagree with the
 * key and no separate setting has to be kept in step.
 */
export async function keyIdOf(publicKey: KeyObject): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(publicKey), 'sha256');
}

function requireEd25519(key: KeyObject, file: string): void {
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(`${file} holds a ${key.asymmetricKeyType ?? key.type} key; internal JWTs need Ed25519`);
  }
}

export async function signingKeyFromPem(pem: string | Buffer, source = 'private key'): Promise<SigningKey> {
  const privateKey = createPrivateKey(pem);
  requireEd25519(privateKey, source);
  return { kid: await keyIdOf(createPublicKey(privateKey)), privateKey };
}

export async function loadSigningKey(privateKeyFile: string): Promise<SigningKey> {
  return signingKeyFromPem(await readFile(privateKeyFile), privateKeyFile);
}

const PUBLIC_KEY_BLOCK = /-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g;

/**
 * The public keys of a PEM bundle: one or more `PUBLIC KEY` blocks, one per
 * line group. A rotation publishes old and new key in one file, so verifiers
 * accept both while tokens signed with either may still be alive.
 */
export async function parsePublicKeyBundle(text: string, source = 'public key bundle'): Promise<Map<string, KeyObject>> {
  const blocks = text.match(PUBLIC_KEY_BLOCK) ?? [];
  if (blocks.length === 0) throw new Error(`${source} holds no PEM "PUBLIC KEY" block`);
  const byKid = new Map<string, KeyObject>();
  for (const block of blocks) {
    const publicKey = createPublicKey(block);
    requireEd25519(publicKey, source);
    byKid.set(await keyIdOf(publicKey), publicKey);
  }
  return byKid;
}

/** One PEM block per key, in order: what a bundle file holds. */
export function formatPublicKeyBundle(keys: Iterable<KeyObject>): string {
  return [...keys].map((key) => (key.export({ type: 'spki', format: 'pem' }) as string).trim()).join('\n') + '\n';
}

export async function readPublicKeyFiles(publicKeyFiles: readonly string[]): Promise<Map<string, KeyObject>> {
  const byKid = new Map<string, KeyObject>();
  for (const file of publicKeyFiles) {
    for (const [kid, key] of await parsePublicKeyBundle(await readFile(file, 'utf8'), file)) byKid.set(kid, key);
  }
  return byKid;
}

/** Several public keys are accepted at once so keys rotate without downtime; each file may be a bundle. */
export async function loadVerificationKeys(publicKeyFiles: string[]): Promise<VerificationKeySet> {
  const byKid = await readPublicKeyFiles(publicKeyFiles);
  return { get: (kid) => byKid.get(kid), kids: [...byKid.keys()] };
}
