import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { calculateJwkThumbprint, exportJWK } from 'jose';

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
}

export interface VerificationKeySet {
  get(kid: string): KeyObject | undefined;
  readonly kids: string[];
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

export async function loadSigningKey(privateKeyFile: string): Promise<SigningKey> {
  const privateKey = createPrivateKey(await readFile(privateKeyFile));
  requireEd25519(privateKey, privateKeyFile);
  return { kid: await keyIdOf(createPublicKey(privateKey)), privateKey };
}

/** Several public keys are accepted at once so keys rotate without downtime. */
export async function loadVerificationKeys(publicKeyFiles: string[]): Promise<VerificationKeySet> {
  const byKid = new Map<string, KeyObject>();
  for (const file of publicKeyFiles) {
    const publicKey = createPublicKey(await readFile(file));
    requireEd25519(publicKey, file);
    byKid.set(await keyIdOf(publicKey), publicKey);
  }
  return { get: (kid) => byKid.get(kid), kids: [...byKid.keys()] };
}
