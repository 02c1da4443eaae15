import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { initialPepperFile, PepperRing, readPepperFile, writePepperFile } from '@aifactory/service-auth';
import { runRotate } from './cli.js';
import { usedPepperVersions } from './iam-database.js';
import { prunePepper, rotatePepper } from './pepper-rotation.js';

const ADMIN_URL = process.env.TEST_DATABASE_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('api-key-pepper rotation', () => {
  let dir: string;
  let file: string;
  let lines: string[];
  const log = (line: string) => lines.push(line);

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'aif-pepper-rotate-'));
    file = path.join(dir, 'api-key-pepper.json');
    await writePepperFile(file, initialPepperFile());
    lines = [];
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** No pepper value may ever reach output. */
  async function expectNoSecretPrinted(): Promise<void> {
    const { versions } = await readPepperFile(file);
    for (const value of Object.values(versions)) for (const line of lines) expect(line.includes(value.slice(0, 16))).toBe(false);
  }

  it('makes a new version current and keeps the old one while a stored hash uses it', async () => {
    const report = await rotatePepper({ file, usedVersions: async () => [1], settleMs: 0, log });
    expect(report).toEqual({ previous: 1, current: 2, pruned: [], kept: [1, 2], pruneChecked: true });
    const pepper = await readPepperFile(file);
    expect(pepper.current).toBe(2);
    expect(Object.keys(pepper.versions).sort()).toEqual(['1', '2']);
    expect(pepper.versions['2']).not.toBe(pepper.versions['1']);
    expect(Buffer.from(pepper.versions['2']!, 'base64url')).toHaveLength(32);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).sort()).toEqual(['api-key-pepper.json']);
    await expectNoSecretPrinted();
  });

  it('prunes a version only when no stored hash uses it, and never the current one', async () => {
    expect((await rotatePepper({ file, usedVersions: async () => [], settleMs: 0, log })).pruned).toEqual([1]);
    expect(Object.keys((await readPepperFile(file)).versions)).toEqual(['2']);
    // Hashes under 2 only: rotating to 3 keeps 2, then a later prune drops it once keys moved on.
    expect((await rotatePepper({ file, usedVersions: async () => [2], settleMs: 0, log })).kept).toEqual([2, 3]);
    expect((await prunePepper({ file, usedVersions: async () => [3], log })).pruned).toEqual([2]);
    // Not even an empty answer removes the current version.
    expect((await prunePepper({ file, usedVersions: async () => [], log })).kept).toEqual([3]);
    expect((await readPepperFile(file)).current).toBe(3);
    await expectNoSecretPrinted();
  });

  it('waits the settle time before pruning, and decides on the file as it is then', async () => {
    const waited: number[] = [];
    const asked: number[] = [];
    await rotatePepper({
      file,
      usedVersions: async () => {
        asked.push(waited.length);
        return [1];
      },
      settleMs: 10_000,
      sleep: async (ms) => void waited.push(ms),
      log,
    });
    expect(waited).toEqual([10_000]);
    expect(asked).toEqual([1]);
  });

  it('warns when hashes use a version the file lacks, and prunes nothing without a database', async () => {
    await prunePepper({ file, usedVersions: async () => [1, 7], log });
    expect(lines.some((line) => line.includes('WARNING') && line.includes('7'))).toBe(true);
    const report = await rotatePepper({ file, log });
    expect(report.pruneChecked).toBe(false);
    expect(Object.keys((await readPepperFile(file)).versions).sort()).toEqual(['1', '2']);
  });

  it('keeps the rotation when pruning fails, and says so', async () => {
    const report = await rotatePepper({
      file,
      usedVersions: async () => {
        throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
      },
      settleMs: 0,
      log,
    });
    expect(report).toMatchObject({ current: 2, pruneChecked: false, pruneError: 'connect ECONNREFUSED 127.0.0.1:5432' });
    expect((await readPepperFile(file)).current).toBe(2);
    const code = await runRotate(['api-key-pepper', '--settle-ms', '0'], { API_KEY_PEPPER_FILE: file, IAM_DATABASE_URL: 'postgresql://x@127.0.0.1:1/none' }, {
      out: log,
      err: log,
      usedPepperVersions: async () => {
        throw new Error('unreachable');
      },
    });
    expect(code).toBe(3);
    expect((await readPepperFile(file)).current).toBe(3);
  });

  it('refuses a second rotation while one runs', async () => {
    let release!: () => void;
    const first = rotatePepper({ file, usedVersions: () => new Promise((resolve) => (release = () => resolve([1]))), settleMs: 0, log });
    await until(() => release !== undefined);
    await expect(rotatePepper({ file, settleMs: 0, log })).rejects.toThrow(/another rotation holds/);
    release();
    await first;
    expect((await readPepperFile(file)).current).toBe(2);
  });

  it('is picked up by running processes: new keys hash with the new version, old hashes still verify', async () => {
    const ring = await PepperRing.load(file, { reloadEveryMs: 20 });
    try {
      const oldHash = ring.hash('old-key-secret');
      await rotatePepper({ file, usedVersions: async () => [1], settleMs: 0, log });
      await until(() => ring.currentVersion === 2);
      expect(ring.verify('old-key-secret', 1, oldHash)).toBe(true);
      // Re-hash on next use: the same secret under the current version.
      expect(ring.verify('old-key-secret', 2, ring.hash('old-key-secret'))).toBe(true);
    } finally {
      ring.close();
    }
  });

  describe('with a database shaped like iam.api_keys', () => {
    const database = `aif_test_secrets_${randomBytes(4).toString('hex')}`;
    let admin: pg.Client;
    let url: string;

    beforeAll(async () => {
      admin = new pg.Client({ connectionString: ADMIN_URL });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${database}`);
      url = withDatabase(ADMIN_URL, database);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query('CREATE SCHEMA iam');
      await client.query('CREATE TABLE iam.api_keys (key_id text PRIMARY KEY, hash text NOT NULL, pepper_version int NOT NULL)');
      await client.query(`INSERT INTO iam.api_keys VALUES ('a', 'h', 1), ('b', 'h', 1), ('c', 'h', 3)`);
      await client.end();
    });
    afterAll(async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      await admin.end();
    });

    it('reads the versions in use', async () => {
      expect(await usedPepperVersions(url)).toEqual([1, 3]);
    });

    it('rotates and prunes through the command, printing no secret', async () => {
      const pepper = await readPepperFile(file);
      await writePepperFile(file, { current: 3, versions: { '1': pepper.versions['1']!, '2': initialPepperFile().versions['1']!, '3': initialPepperFile().versions['1']! } });
      const errors: string[] = [];
      const code = await runRotate(['api-key-pepper', '--settle-ms', '0'], { API_KEY_PEPPER_FILE: file, IAM_DATABASE_URL: url }, { out: log, err: (line) => errors.push(line) });
      expect(errors).toEqual([]);
      expect(code).toBe(0);
      const after = await readPepperFile(file);
      expect(after.current).toBe(4);
      expect(Object.keys(after.versions).sort()).toEqual(['1', '3', '4']);
      expect(lines.at(-1)).toBe('api-key-pepper: version 4 current (was 3); pruned 2');
      await expectNoSecretPrinted();
    });
  });
});
