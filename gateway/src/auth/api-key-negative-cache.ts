import { createHash } from 'node:crypto';

interface CachedRefusal<T> {
  /** The refusal the key got, answered again as it was. */
  value: T;
  /** The key id it named; undefined for a malformed key. */
  keyId: string | undefined;
  untilMs: number;
}

const DEFAULT_MAX_ENTRIES = 10_000;

/**
 * Refused keys, remembered briefly (issue 15, At the gateway: "a short
 * negative cache"), so a client repeating a bad key costs neither an HMAC nor
 * a read-model lookup. Keyed by a SHA-256 of the presented text, so no raw
 * key sits in memory as a map key. A key id's entries are dropped as soon as
 * its read-model entry changes: a key created a moment ago, or un-archived,
 * must not stay refused for the rest of the window.
 */
export class ApiKeyNegativeCache<T> {
  private readonly entries = new Map<string, CachedRefusal<T>>();
  private readonly byKeyId = new Map<string, Set<string>>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = DEFAULT_MAX_ENTRIES,
  ) {}

  static fingerprint(presented: string): string {
    return createHash('sha256').update(presented).digest('base64url');
  }

  get size(): number {
    return this.entries.size;
  }

  get(fingerprint: string, nowMs: number): T | undefined {
    this.dropExpired(nowMs);
    const cached = this.entries.get(fingerprint);
    if (cached === undefined) return undefined;
    if (cached.untilMs > nowMs) return cached.value;
    this.delete(fingerprint, cached);
    return undefined;
  }

  remember(fingerprint: string, keyId: string | undefined, value: T, nowMs: number): void {
    this.dropExpired(nowMs);
    const previous = this.entries.get(fingerprint);
    if (previous !== undefined) this.delete(fingerprint, previous);
    if (this.entries.size >= this.maxEntries) {
      // Insertion order is age order: the oldest refusal goes first.
      const oldest = this.entries.entries().next();
      if (!oldest.done) this.delete(oldest.value[0], oldest.value[1]);
    }
    this.entries.set(fingerprint, { value, keyId, untilMs: nowMs + this.ttlMs });
    if (keyId === undefined) return;
    let fingerprints = this.byKeyId.get(keyId);
    if (fingerprints === undefined) this.byKeyId.set(keyId, (fingerprints = new Set()));
    fingerprints.add(fingerprint);
  }

  /** The key's entry changed (created, revoked, re-hashed, removed): judge it afresh next time. */
  forgetKey(keyId: string): void {
    const fingerprints = this.byKeyId.get(keyId);
    if (fingerprints === undefined) return;
    this.byKeyId.delete(keyId);
    for (const fingerprint of fingerprints) this.entries.delete(fingerprint);
  }

  /** Every entry lives equally long and is inserted at the back, so the expired ones are at the front. */
  private dropExpired(nowMs: number): void {
    for (const [fingerprint, cached] of this.entries) {
      if (cached.untilMs > nowMs) return;
      this.delete(fingerprint, cached);
    }
  }

  private delete(fingerprint: string, cached: CachedRefusal<T>): void {
    this.entries.delete(fingerprint);
    if (cached.keyId === undefined) return;
    const fingerprints = this.byKeyId.get(cached.keyId);
    fingerprints?.delete(fingerprint);
    if (fingerprints?.size === 0) this.byKeyId.delete(cached.keyId);
  }
}
