import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { z } from 'zod';

/**
 * The versioned pepper API-key hashes are keyed with (issue 15, Secrets
 * custody). It lives only in a file named in config, never in a database row
 * or read model: a stolen database alone cannot test guesses against hashes.
 * Each stored hash names the version it was made with, so a rotation adds a
 * version and the old one stays until no hash uses it.
 */
const pepperFileSchema = z.object({
  current: z.number().int().positive(),
  versions: z.record(z.string().regex(/^[1-9][0-9]*$/), z.string().min(43)),
});
export type PepperFile = z.infer<typeof pepperFileSchema>;

export function newPepperValue(): string {
  return randomBytes(32).toString('base64url');
}

export function parsePepperFile(text: string, file: string): PepperFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${file} is not JSON; expected {"current": n, "versions": {"n": "<base64url>"}}`);
  }
  const parsed = pepperFileSchema.safeParse(json);
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`);
  if (parsed.data.versions[String(parsed.data.current)] === undefined) throw new Error(`${file}: the current version ${parsed.data.current} is not among its versions`);
  return parsed.data;
}

export async function readPepperFile(file: string): Promise<PepperFile> {
  return parsePepperFile(await readFile(file, 'utf8'), file);
}

/** Atomic (write then rename) and owner-only, so a reader never sees half a file. */
export async function writePepperFile(file: string, pepper: PepperFile): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(pepper, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, file);
}

export function initialPepperFile(): PepperFile {
  return { current: 1, versions: { '1': newPepperValue() } };
}

export interface PepperRingOptions {
  /** An unknown version triggers at most one re-read of the file per this many ms. */
  reloadMinIntervalMs?: number;
  /**
   * How often the file is checked for a change (a rotation made a new version
   * current), default 5 s; 0 turns the check off. Hashing with the new
   * current version starts within this interval, without a restart.
   */
  reloadEveryMs?: number;
  /** Told when a periodic re-read fails; the versions read before stay in use. */
  onReloadError?: (error: unknown) => void;
}

/** The default of `reloadEveryMs`; `secrets:rotate` waits longer than this before pruning. */
export const DEFAULT_PEPPER_RELOAD_MS = 5_000;

async function fileStamp(path: string): Promise<string> {
  const info = await stat(path, { bigint: true });
  return `${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
}

export class PepperRing {
  private file: PepperFile;
  private keys = new Map<number, Buffer>();
  private lastReloadMs = 0;
  private reloading: Promise<void> | undefined;
  private stamp: string | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly path: string,
    file: PepperFile,
    private readonly reloadMinIntervalMs: number,
  ) {
    this.file = file;
    this.index(file);
  }

  static async load(path: string, options: PepperRingOptions = {}): Promise<PepperRing> {
    const stamp = await fileStamp(path);
    const ring = new PepperRing(path, await readPepperFile(path), options.reloadMinIntervalMs ?? 1_000);
    ring.stamp = stamp;
    const every = options.reloadEveryMs ?? DEFAULT_PEPPER_RELOAD_MS;
    if (every > 0) {
      let checking = false;
      // Unref'd: a ring never keeps a process (or a test) alive.
      ring.timer = setInterval(() => {
        if (checking) return;
        checking = true;
        void ring
          .reloadIfChanged()
          .catch((error: unknown) => options.onReloadError?.(error))
          .finally(() => (checking = false));
      }, every);
      ring.timer.unref();
    }
    return ring;
  }

  /** Stops the periodic check. */
  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Re-reads the file when it changed since the last read; true when it did. */
  async reloadIfChanged(): Promise<boolean> {
    if ((await fileStamp(this.path)) === this.stamp) return false;
    await this.reload();
    return true;
  }

  get currentVersion(): number {
    return this.file.current;
  }

  get versions(): number[] {
    return [...this.keys.keys()].sort((a, b) => a - b);
  }

  has(version: number): boolean {
    return this.keys.has(version);
  }

  /** HMAC-SHA256 of the secret under one pepper version, base64url. */
  hash(secret: string, version: number = this.file.current): string {
    const key = this.keys.get(version);
    if (key === undefined) throw new RangeError(`pepper version ${version} is not in ${this.path}`);
    return createHmac('sha256', key).update(secret).digest('base64url');
  }

  /** Constant-time comparison; false for a version this ring does not hold. */
  verify(secret: string, version: number, expectedHash: string): boolean {
    if (!this.keys.has(version)) return false;
    const actual = Buffer.from(this.hash(secret, version));
    const expected = Buffer.from(expectedHash);
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }

  /**
   * Re-reads the file when `version` is unknown (a rotation happened since
   * start), at most once per interval, so rotation needs no restart.
   */
  async ensure(version: number): Promise<boolean> {
    if (this.keys.has(version)) return true;
    if (Date.now() - this.lastReloadMs < this.reloadMinIntervalMs) return false;
    await this.reload();
    return this.keys.has(version);
  }

  /** Picks up a rotation: the new current version and any version removed after its last hash moved on. */
  reload(): Promise<void> {
    this.reloading ??= (async () => {
      try {
        this.lastReloadMs = Date.now();
        const stamp = await fileStamp(this.path);
        const file = await readPepperFile(this.path);
        this.stamp = stamp;
        this.file = file;
        this.index(file);
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }

  private index(file: PepperFile): void {
    this.keys = new Map(Object.entries(file.versions).map(([version, value]) => [Number(version), Buffer.from(value, 'base64url')]));
  }
}
