import { stat } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { loadSigningKey, readPublicKeyFiles, type SigningKey, type SigningKeySource, type VerificationKeySet } from './keys.js';

/**
 * Key files that follow a rotation without a restart (issue 15, Secrets
 * custody): `npm run secrets:rotate -- internal-jwt-signing` replaces the
 * files atomically (write, then rename), and every process picks the change
 * up here within its reload interval.
 */

/** The default of INTERNAL_JWT_KEY_RELOAD_MS: how often key files are checked for a change. */
export const DEFAULT_KEY_RELOAD_MS = 5_000;
/** An unknown kid re-reads the public key files at most this often, so forged kids cannot turn into file reads. */
export const DEFAULT_UNKNOWN_KID_RELOAD_MS = 1_000;

export interface KeyFileReloadOptions {
  /** How often the files are checked for a change; 0 checks only when asked. */
  reloadMs?: number;
  /** Told when a changed file could not be read; the keys read before stay in use. */
  onError?: (error: unknown) => void;
  /** Told after a reload changed the keys, with the kids now held. */
  onChange?: (kids: string[]) => void;
}

/** What identifies one version of a file: a rename gives a new inode, an edit a new mtime or size. */
async function stampOf(file: string): Promise<string> {
  const info = await stat(file, { bigint: true });
  return `${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
}

async function stampsOf(files: readonly string[]): Promise<string> {
  return (await Promise.all(files.map(stampOf))).join('|');
}

/** Runs `tick` every `ms` without keeping the process alive; a tick never overlaps the previous one. */
function every(ms: number, tick: () => Promise<unknown>): () => void {
  if (ms <= 0) return () => undefined;
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void tick().finally(() => (running = false));
  }, ms);
  timer.unref();
  return () => clearInterval(timer);
}

export interface ReloadingSigningKey extends SigningKeySource {
  /** Reads the file again if it changed since the last read; true when the key changed. */
  reload(): Promise<boolean>;
  close(): void;
}

/**
 * The private signing key in `file`, re-read when the file changes. A signer
 * built on it (`InternalTokenSigner`, `ServiceTokenIssuer`) signs with the
 * new key from the next token on, without a restart.
 */
export async function openSigningKeyFile(file: string, options: KeyFileReloadOptions = {}): Promise<ReloadingSigningKey> {
  let stamp = await stampOf(file);
  let key: SigningKey = await loadSigningKey(file);
  let reloading: Promise<boolean> | undefined;
  const reload = (): Promise<boolean> =>
    (reloading ??= (async () => {
      try {
        const next = await stampOf(file);
        if (next === stamp) return false;
        const loaded = await loadSigningKey(file);
        stamp = next;
        const changed = loaded.kid !== key.kid;
        key = loaded;
        if (changed) options.onChange?.([key.kid]);
        return changed;
      } catch (error) {
        options.onError?.(error);
        return false;
      } finally {
        reloading = undefined;
      }
    })());
  const stop = every(options.reloadMs ?? DEFAULT_KEY_RELOAD_MS, reload);
  return { current: () => key, reload, close: stop };
}

export interface ReloadingVerificationKeySetOptions extends KeyFileReloadOptions {
  /** An unknown kid re-reads the files at most this often. */
  unknownKidReloadMs?: number;
}

export interface ReloadingVerificationKeySet extends VerificationKeySet {
  refresh(): Promise<boolean>;
  /** Re-reads the files if any changed (or always, with `force`); true when it read them. */
  reload(force?: boolean): Promise<boolean>;
  close(): void;
}

/**
 * The public keys of every file in `files` (each may be a bundle of several
 * keys), re-read every reload interval and, throttled, when a token names a
 * kid the set lacks: a verifier accepts a newly published key without a
 * restart, and stops accepting a key once it left the files.
 */
export async function openVerificationKeys(
  files: readonly string[],
  options: ReloadingVerificationKeySetOptions = {},
): Promise<ReloadingVerificationKeySet> {
  let stamp = await stampsOf(files);
  let byKid: Map<string, KeyObject> = await readPublicKeyFiles(files);
  let kids = [...byKid.keys()];
  const unknownKidReloadMs = options.unknownKidReloadMs ?? DEFAULT_UNKNOWN_KID_RELOAD_MS;
  let lastRefreshMs = 0;
  let reloading: Promise<boolean> | undefined;
  const reload = (force = false): Promise<boolean> =>
    (reloading ??= (async () => {
      try {
        const next = await stampsOf(files);
        if (!force && next === stamp) return false;
        const read = await readPublicKeyFiles(files);
        stamp = next;
        const before = kids.join(',');
        byKid = read;
        kids = [...read.keys()];
        if (kids.join(',') !== before) options.onChange?.(kids);
        return true;
      } catch (error) {
        options.onError?.(error);
        return false;
      } finally {
        reloading = undefined;
      }
    })());
  const stop = every(options.reloadMs ?? DEFAULT_KEY_RELOAD_MS, () => reload());
  return {
    get: (kid) => byKid.get(kid),
    get kids() {
      return kids;
    },
    refresh: async () => {
      if (reloading) return reloading;
      const now = Date.now();
      if (now - lastRefreshMs < unknownKidReloadMs) return false;
      lastRefreshMs = now;
      return reload();
    },
    reload,
    close: stop,
  };
}
