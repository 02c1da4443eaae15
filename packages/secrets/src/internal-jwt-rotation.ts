import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import {
  DEFAULT_KEY_RELOAD_MS,
  formatPublicKeyBundle,
  INTERNAL_JWT_MAX_TTL_SECONDS,
  keyIdOf,
  loadSigningKey,
  parsePublicKeyBundle,
} from '@aifactory/service-auth';
import { withLock, writeFileAtomic } from './files.js';

/**
 * How long an old public key must stay after the private key file changed:
 * every signer re-reads its key within the reload interval, and a token it
 * signed just before lives at most 60 s.
 */
export const DEFAULT_INTERNAL_JWT_OVERLAP_MS = INTERNAL_JWT_MAX_TTL_SECONDS * 1000 + DEFAULT_KEY_RELOAD_MS;

export interface InternalJwtKeyFiles {
  privateKeyFile: string;
  /** The public key bundle verifiers read (one of INTERNAL_JWT_PUBLIC_KEY_FILES). */
  publicKeyFile: string;
}

export interface InternalJwtRotationOptions extends InternalJwtKeyFiles {
  /** Old key kept after the swap; default 65 s. */
  overlapMs?: number;
  /**
   * Between publishing the new public key and signing with it: verifiers re-read
   * their files within the reload interval (and at once on an unknown kid).
   */
  publishWaitMs?: number;
  /** False (`--no-wait`): leave the old key published; a later `--retire-only` run drops it. */
  wait?: boolean;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  log: (line: string) => void;
}

export interface InternalJwtReport {
  previousKid?: string;
  currentKid: string;
  /** Kids dropped from the bundle by this run. */
  retired: string[];
  /** Superseded kids still published, and from when they may go. */
  pending: Array<{ kid: string; retireAfter: string }>;
}

/**
 * Beside the bundle (no secrets): which kids a rotation superseded and when,
 * so a later run can retire them once the overlap has passed.
 */
const manifestSchema = z.object({ superseded: z.array(z.object({ kid: z.string().min(1), supersededAt: z.iso.datetime() })) });
type Manifest = z.infer<typeof manifestSchema>;

export function manifestFileOf(publicKeyFile: string): string {
  return `${publicKeyFile}.rotation.json`;
}

async function readManifest(publicKeyFile: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(manifestFileOf(publicKeyFile), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { superseded: [] };
    throw error;
  }
  return manifestSchema.parse(JSON.parse(text));
}

async function writeManifest(publicKeyFile: string, manifest: Manifest): Promise<void> {
  await writeFileAtomic(manifestFileOf(publicKeyFile), `${JSON.stringify(manifest, null, 2)}\n`, 0o644);
}

async function readBundle(publicKeyFile: string): Promise<Map<string, KeyObject>> {
  return parsePublicKeyBundle(await readFile(publicKeyFile, 'utf8'), publicKeyFile);
}

async function writeBundle(publicKeyFile: string, keys: Map<string, KeyObject>): Promise<void> {
  await writeFileAtomic(publicKeyFile, formatPublicKeyBundle(keys.values()), 0o644);
}

/**
 * Drops from the bundle every kid the manifest says was superseded longer
 * than the overlap ago; never the kid of the current private key.
 */
async function retire(options: InternalJwtRotationOptions, nowMs: number): Promise<Pick<InternalJwtReport, 'retired' | 'pending'>> {
  const overlapMs = options.overlapMs ?? DEFAULT_INTERNAL_JWT_OVERLAP_MS;
  const manifest = await readManifest(options.publicKeyFile);
  if (manifest.superseded.length === 0) return { retired: [], pending: [] };
  const signingKid = (await loadSigningKey(options.privateKeyFile)).kid;
  const bundle = await readBundle(options.publicKeyFile);
  const retired: string[] = [];
  const pending: InternalJwtReport['pending'] = [];
  const kept: Manifest['superseded'] = [];
  for (const entry of manifest.superseded) {
    const retireAfterMs = Date.parse(entry.supersededAt) + overlapMs;
    if (entry.kid === signingKid) continue; // signing with it again: it is no longer superseded
    if (retireAfterMs > nowMs) {
      kept.push(entry);
      pending.push({ kid: entry.kid, retireAfter: new Date(retireAfterMs).toISOString() });
    } else if (bundle.delete(entry.kid)) {
      retired.push(entry.kid);
    }
  }
  if (retired.length > 0) {
    if (bundle.size === 0) throw new Error(`retiring ${retired.join(', ')} would leave ${options.publicKeyFile} empty; nothing changed`);
    await writeBundle(options.publicKeyFile, bundle);
    options.log(`internal-jwt-signing: retired public key(s) ${retired.join(', ')} from ${options.publicKeyFile}`);
  }
  await writeManifest(options.publicKeyFile, { superseded: kept });
  return { retired, pending };
}

/** `secrets:rotate -- internal-jwt-signing --retire-only`: finishes earlier `--no-wait` rotations. */
export async function retireInternalJwtKeys(options: InternalJwtRotationOptions): Promise<InternalJwtReport> {
  return withLock(options.privateKeyFile, async () => {
    const result = await retire(options, (options.now ?? Date.now)());
    for (const { kid, retireAfter } of result.pending) options.log(`internal-jwt-signing: ${kid} stays published until ${retireAfter}`);
    return { currentKid: (await loadSigningKey(options.privateKeyFile)).kid, ...result };
  });
}

/**
 * `secrets:rotate -- internal-jwt-signing`, with no downtime:
 * 1. the new public key joins the bundle (old + new), and verifiers accept it;
 * 2. after the publish wait, the private key file is replaced, and every
 *    signer following it (`openSigningKeyFile`) signs with the new key;
 * 3. after the overlap (token life + reload interval) the old public key
 *    leaves the bundle, or with `wait: false` stays until a later run.
 * Both files are written atomically; nothing secret is logged.
 */
export async function rotateInternalJwt(options: InternalJwtRotationOptions): Promise<InternalJwtReport> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const overlapMs = options.overlapMs ?? DEFAULT_INTERNAL_JWT_OVERLAP_MS;
  return withLock(options.privateKeyFile, async () => {
    // Earlier rotations left with --no-wait whose overlap is over go first.
    const earlier = await retire(options, now());
    const previous = await loadSigningKey(options.privateKeyFile);
    const bundle = await readBundle(options.publicKeyFile);
    if (!bundle.has(previous.kid)) {
      options.log(`WARNING: the current signing key ${previous.kid} was not in ${options.publicKeyFile}; published it again so its tokens keep verifying`);
    }
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const kid = await keyIdOf(publicKey);
    bundle.set(previous.kid, createPublicKey(previous.privateKey));
    bundle.set(kid, publicKey);
    await writeBundle(options.publicKeyFile, bundle);
    options.log(`internal-jwt-signing: published new public key ${kid} beside ${previous.kid} in ${options.publicKeyFile}`);

    const publishWaitMs = options.publishWaitMs ?? DEFAULT_KEY_RELOAD_MS;
    if (publishWaitMs > 0) {
      options.log(`waiting ${Math.round(publishWaitMs / 1000)} s for verifiers to read the new public key`);
      await sleep(publishWaitMs);
    }
    await writeFileAtomic(options.privateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
    const swappedAt = now();
    options.log(`internal-jwt-signing: ${options.privateKeyFile} now holds ${kid} (was ${previous.kid}); signers switch within their reload interval`);
    const manifest = await readManifest(options.publicKeyFile);
    await writeManifest(options.publicKeyFile, {
      superseded: [...manifest.superseded.filter((entry) => entry.kid !== previous.kid), { kid: previous.kid, supersededAt: new Date(swappedAt).toISOString() }],
    });

    if (options.wait === false) {
      const retireAfter = new Date(swappedAt + overlapMs).toISOString();
      options.log(
        `internal-jwt-signing: the old public key ${previous.kid} stays published. After ${retireAfter} run ` +
          '`npm run secrets:rotate -- internal-jwt-signing --retire-only` to drop it (any later rotation also does).',
      );
      return { previousKid: previous.kid, currentKid: kid, retired: earlier.retired, pending: [...earlier.pending, { kid: previous.kid, retireAfter }] };
    }
    options.log(`waiting ${Math.round(overlapMs / 1000)} s (token life + reload interval) before dropping ${previous.kid}`);
    await sleep(overlapMs);
    const later = await retire(options, now());
    return { previousKid: previous.kid, currentKid: kid, retired: [...earlier.retired, ...later.retired], pending: later.pending };
  });
}
