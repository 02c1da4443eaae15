import { createPublicKey, type KeyObject } from 'node:crypto';
import { keyIdOf } from './keys.js';

/**
 * A platform service's identity as a verifier needs it: the shape of IAM's
 * read-model entry (`ServiceIdentityEntry` in @aifactory/authz, which this
 * package cannot import). Public keys only; the private credential never
 * leaves the service's own file.
 */
export interface ServiceIdentityRecord {
  name: string;
  status: 'active' | 'disabled';
  /** What its tokens may claim. */
  scopes: readonly string[];
  /** The services it may call. */
  audiences: readonly string[];
  /** Ed25519 SPKI PEM by RFC 7638 thumbprint; two while its credential rotates. */
  keys: ReadonlyArray<{ kid: string; publicKeyPem: string }>;
}

const MAX_CACHED_KEYS = 256;

/**
 * Parsed public keys of service identities. Only parsing is cached: a key
 * is used only while the entry asked at that moment lists the same kid with
 * the same PEM, so nothing here can outlive a change of the entry. The kid
 * must be the key's own thumbprint, so an entry cannot pair a kid with a
 * different key.
 */
export class ServiceKeyCache {
  private keys = new Map<string, { pem: string; key: KeyObject }>();

  async keyFor(service: string, listed: { kid: string; publicKeyPem: string }): Promise<KeyObject> {
    const cacheKey = `${service}\n${listed.kid}`;
    const cached = this.keys.get(cacheKey);
    if (cached !== undefined && cached.pem === listed.publicKeyPem) return cached.key;
    const key = createPublicKey(listed.publicKeyPem);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error(`service ${service}: key ${listed.kid} is not Ed25519`);
    if ((await keyIdOf(key)) !== listed.kid) throw new Error(`service ${service}: kid ${listed.kid} is not the key's thumbprint`);
    if (this.keys.size >= MAX_CACHED_KEYS) this.keys = new Map();
    this.keys.set(cacheKey, { pem: listed.publicKeyPem, key });
    return key;
  }

  forget(service: string): void {
    for (const cacheKey of this.keys.keys()) if (cacheKey.startsWith(`${service}\n`)) this.keys.delete(cacheKey);
  }
}
