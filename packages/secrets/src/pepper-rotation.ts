import { DEFAULT_PEPPER_RELOAD_MS, newPepperValue, readPepperFile, type PepperFile } from '@aifactory/service-auth';
import { withLock, writeFileAtomic } from './files.js';

/** Long enough for every process's PepperRing to have re-read the file (it checks every 5 s). */
export const DEFAULT_PEPPER_SETTLE_MS = 2 * DEFAULT_PEPPER_RELOAD_MS;

export interface PepperPruneOptions {
  file: string;
  /** The pepper versions stored hashes use (`SELECT DISTINCT pepper_version FROM iam.api_keys`). */
  usedVersions: () => Promise<number[]>;
  log: (line: string) => void;
}

export interface PepperRotationOptions {
  file: string;
  /** Left out, nothing is pruned (the report says so). */
  usedVersions?: () => Promise<number[]>;
  /**
   * Waited between making the new version current and pruning, so no process
   * still hashes with the version before it when pruning decides.
   */
  settleMs?: number;
  sleep?: (ms: number) => Promise<void>;
  log: (line: string) => void;
}

export interface PepperReport {
  previous: number;
  current: number;
  /** Versions removed from the file. */
  pruned: number[];
  /** Versions kept: the current one and every one a stored hash uses. */
  kept: number[];
  /** False when nothing could tell which versions hashes use. */
  pruneChecked: boolean;
  /** Why pruning failed after the rotation succeeded (iam's database unreachable); the rotation stands. */
  pruneError?: string;
}

function versionsOf(pepper: PepperFile): number[] {
  return Object.keys(pepper.versions)
    .map(Number)
    .sort((a, b) => a - b);
}

async function writePepper(file: string, pepper: PepperFile): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(pepper, null, 2)}\n`, 0o600);
}

/**
 * Removes every version that no stored hash uses, never the current one.
 * The file is read again here, so what is pruned is judged on the file as it
 * is now.
 */
async function prune(file: string, usedVersions: () => Promise<number[]>, log: (line: string) => void): Promise<Omit<PepperReport, 'previous'>> {
  const used = new Set(await usedVersions());
  const pepper = await readPepperFile(file);
  const versions = versionsOf(pepper);
  const missing = [...used].filter((version) => pepper.versions[String(version)] === undefined);
  if (missing.length > 0) {
    log(`WARNING: stored hashes use pepper version(s) ${missing.join(', ')} that ${file} does not hold; those keys cannot be verified`);
  }
  const kept = versions.filter((version) => version === pepper.current || used.has(version));
  const pruned = versions.filter((version) => !kept.includes(version));
  if (pruned.length > 0) {
    await writePepper(file, { current: pepper.current, versions: Object.fromEntries(kept.map((version) => [String(version), pepper.versions[String(version)]!])) });
    log(`pruned pepper version(s) ${pruned.join(', ')}: no stored hash uses them`);
  }
  if (kept.length > 1) log(`kept pepper version(s) ${kept.join(', ')} (current ${pepper.current}; the others still hash stored keys, which move to the current one when next used)`);
  return { current: pepper.current, pruned, kept, pruneChecked: true };
}

/** `secrets:rotate -- api-key-pepper --prune-only`: prunes, rotates nothing. */
export async function prunePepper(options: PepperPruneOptions): Promise<PepperReport> {
  return withLock(options.file, async () => {
    const before = await readPepperFile(options.file);
    return { previous: before.current, ...(await prune(options.file, options.usedVersions, options.log)) };
  });
}

/**
 * `secrets:rotate -- api-key-pepper`: a new random version becomes current
 * (atomic write); every process picks it up within its reload interval and
 * hashes new keys with it, and re-hashes an old key when it is next used.
 * After the settle time, versions no stored hash uses are pruned.
 */
export async function rotatePepper(options: PepperRotationOptions): Promise<PepperReport> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  return withLock(options.file, async () => {
    const pepper = await readPepperFile(options.file);
    const next = Math.max(...versionsOf(pepper)) + 1;
    await writePepper(options.file, { current: next, versions: { ...pepper.versions, [String(next)]: newPepperValue() } });
    options.log(`api-key-pepper: version ${next} is current (was ${pepper.current}); ${options.file} rewritten atomically`);
    if (options.usedVersions === undefined) {
      options.log('not pruned: no iam database to ask which versions stored hashes use');
      return { previous: pepper.current, current: next, pruned: [], kept: [...versionsOf(pepper), next], pruneChecked: false };
    }
    const settleMs = options.settleMs ?? DEFAULT_PEPPER_SETTLE_MS;
    if (settleMs > 0) {
      options.log(`waiting ${Math.round(settleMs / 1000)} s for every process to re-read the pepper file before pruning`);
      await sleep(settleMs);
    }
    try {
      return { previous: pepper.current, ...(await prune(options.file, options.usedVersions, options.log)) };
    } catch (error) {
      // The new version is current and stays so; pruning can run later on its own (--prune-only).
      const reason = error instanceof Error ? error.message : String(error);
      options.log(`WARNING: version ${next} is current, but pruning failed: ${reason}`);
      return { previous: pepper.current, current: next, pruned: [], kept: [...versionsOf(pepper), next], pruneChecked: false, pruneError: reason };
    }
  });
}
