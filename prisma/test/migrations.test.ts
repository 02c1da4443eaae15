/**
 * The migration runner against a real Postgres: a private database with one
 * throwaway schema `mig` (bootstrapped like a subgraph's, with its own owner
 * and app roles) and migration folders written to a temporary directory for
 * each test. Before every test the schema is dropped and bootstrapped again,
 * so each test starts from an empty, never-migrated schema.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import {
  bootstrapDatabase,
  dropDatabase,
  migrate,
  migrationStatus,
  readMigrationFiles,
  rolesOf,
  withDatabase,
  type MigrationTarget,
} from '@aifactory/db-tools';
import { createLogger } from '@aifactory/logging';
import { uniqueLayout } from '@aifactory/testing';

const SCHEMA = 'mig';
const layout = uniqueLayout();
const bootstrap = { ...layout, subgraphs: [SCHEMA] };
const databaseUrl = withDatabase(layout.adminUrl, layout.database);
const roles = rolesOf(SCHEMA, layout.rolePrefix);
const logger = createLogger({ service: 'migrations-test', level: 'silent' });
/** The runner's advisory lock key, ADVISORY_LOCK_KEY in prisma/src/migrations.ts ("aifm"). */
const ADVISORY_LOCK_KEY = 0x61_69_66_6d;
const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'run-migrate.mjs');

let admin: pg.Client;
const tempDirs: string[] = [];

beforeAll(async () => {
  await bootstrapDatabase(bootstrap);
  admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
});

afterAll(async () => {
  await admin?.end();
  await dropDatabase(bootstrap);
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

beforeEach(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await bootstrapDatabase(bootstrap);
});

/** A fresh migrations folder in Prisma's layout: `<dir>/<name>/migration.sql`. */
async function migrationsDir(migrations: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'aif-migrations-test-'));
  tempDirs.push(dir);
  for (const [name, sql] of Object.entries(migrations)) await writeMigration(dir, name, sql);
  return dir;
}

async function writeMigration(dir: string, name: string, sql: string): Promise<void> {
  await mkdir(path.join(dir, name), { recursive: true });
  await writeFile(path.join(dir, name, 'migration.sql'), sql);
}

function targetFor(dir: string): MigrationTarget {
  return { ...roles, migrationsDir: dir };
}

function run(dir: string, overrides: { lockWaitMs?: number } = {}) {
  return migrate({
    databaseUrl,
    targets: [targetFor(dir)],
    lockWaitMs: overrides.lockWaitMs ?? 30_000,
    lockTimeoutMs: 10_000,
    logger,
  });
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

async function exists(relation: string): Promise<boolean> {
  const { rows } = await admin.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [relation]);
  return rows[0]?.t !== null;
}

interface HistoryRow {
  id: string;
  migration_name: string;
  checksum: string;
  started_at: Date;
  finished_at: Date | null;
  applied_steps_count: number;
  logs: string | null;
  rolled_back_at: Date | null;
}

/** The recorded history, or null when the runner never created its table. */
async function history(): Promise<HistoryRow[] | null> {
  if (!(await exists(`${SCHEMA}._prisma_migrations`))) return null;
  const { rows } = await admin.query<HistoryRow>(`SELECT * FROM ${SCHEMA}._prisma_migrations ORDER BY finished_at, migration_name`);
  return rows;
}

async function recordedNames(): Promise<string[]> {
  return ((await history()) ?? []).map((row) => row.migration_name);
}

describe('readMigrationFiles', () => {
  it('reads migration folders in name order, skips loose files and flags the no-transaction marker', async () => {
    const dir = await migrationsDir({
      '0010_last': 'SELECT 10;\n',
      '0002_middle': '-- aifactory:no-transaction\nSELECT 2;\n',
      '0001_first': 'SELECT 1;\n',
    });
    await writeFile(path.join(dir, 'migration_lock.toml'), 'provider = "postgresql"\n');

    const files = await readMigrationFiles(dir);

    expect(files).toEqual([
      { name: '0001_first', sql: 'SELECT 1;\n', checksum: sha256('SELECT 1;\n'), transactional: true },
      {
        name: '0002_middle',
        sql: '-- aifactory:no-transaction\nSELECT 2;\n',
        checksum: sha256('-- aifactory:no-transaction\nSELECT 2;\n'),
        transactional: false,
      },
      { name: '0010_last', sql: 'SELECT 10;\n', checksum: sha256('SELECT 10;\n'), transactional: true },
    ]);
  });

  it('refuses a migration folder without migration.sql', async () => {
    const dir = await migrationsDir({ '0001_first': 'SELECT 1;\n' });
    await mkdir(path.join(dir, '0002_empty'));

    await expect(readMigrationFiles(dir)).rejects.toMatchObject({
      code: 'MIGRATION_REFUSED',
      message: expect.stringContaining('0002_empty'),
    });
  });
});

describe('migrate', () => {
  it('applies pending migrations in name order as the owner role and records name and sha256 checksum', async () => {
    const create = 'CREATE TABLE steps (n serial PRIMARY KEY, name text NOT NULL);\n';
    const first = "INSERT INTO steps (name) VALUES ('0002_b_first_insert');\n";
    const second = "INSERT INTO steps (name) VALUES ('0010_a_second_insert');\n";
    // Written out of order, and with suffixes that sort the other way round: only the name prefix decides.
    const dir = await migrationsDir({ '0010_a_second_insert': second, '0002_b_first_insert': first, '0001_c_create': create });

    const statuses = await run(dir);

    expect(statuses).toEqual([
      { schema: SCHEMA, applied: ['0001_c_create', '0002_b_first_insert', '0010_a_second_insert'], pending: [], problems: [] },
    ]);
    const steps = await admin.query<{ name: string }>(`SELECT name FROM ${SCHEMA}.steps ORDER BY n`);
    expect(steps.rows.map((row) => row.name)).toEqual(['0002_b_first_insert', '0010_a_second_insert']);

    const owners = await admin.query<{ tablename: string; tableowner: string }>(
      'SELECT tablename, tableowner FROM pg_tables WHERE schemaname = $1 ORDER BY tablename',
      [SCHEMA],
    );
    expect(owners.rows).toEqual([
      { tablename: '_prisma_migrations', tableowner: roles.owner },
      { tablename: 'steps', tableowner: roles.owner },
    ]);

    const rows = await history();
    expect(rows?.map((row) => ({ name: row.migration_name, checksum: row.checksum }))).toEqual([
      { name: '0001_c_create', checksum: sha256(create) },
      { name: '0002_b_first_insert', checksum: sha256(first) },
      { name: '0010_a_second_insert', checksum: sha256(second) },
    ]);
    for (const row of rows ?? []) {
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.rolled_back_at).toBeNull();
      expect(row.applied_steps_count).toBe(1);
    }
  });

  it('applies nothing and changes no history row when run a second time', async () => {
    const dir = await migrationsDir({
      '0001_create': 'CREATE TABLE counter (n serial PRIMARY KEY);\n',
      '0002_insert': 'INSERT INTO counter DEFAULT VALUES;\n',
    });
    await run(dir);
    const before = await history();

    const statuses = await run(dir);

    expect(statuses).toEqual([{ schema: SCHEMA, applied: ['0001_create', '0002_insert'], pending: [], problems: [] }]);
    expect(before).toHaveLength(2);
    expect(await history()).toEqual(before);
    const counter = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${SCHEMA}.counter`);
    expect(counter.rows[0]?.n).toBe(1);
  });

  it('rolls a failing migration back entirely, records nothing for it, stops there and rejects with MIGRATION_REFUSED', async () => {
    const dir = await migrationsDir({
      '0001_ok': 'CREATE TABLE kept (a int);\n',
      '0002_broken': 'CREATE TABLE doomed (a int);\nINSERT INTO doomed VALUES (1);\nSELECT 1 / 0;\n',
      '0003_after': 'CREATE TABLE after_broken (a int);\n',
    });

    await expect(run(dir)).rejects.toMatchObject({
      name: 'AppError',
      code: 'MIGRATION_REFUSED',
      message: expect.stringContaining('0002_broken'),
    });

    expect(await exists(`${SCHEMA}.kept`)).toBe(true);
    expect(await exists(`${SCHEMA}.doomed`)).toBe(false);
    expect(await exists(`${SCHEMA}.after_broken`)).toBe(false);
    expect(await recordedNames()).toEqual(['0001_ok']);
  });

  it('refuses to run when an applied migration was edited, and applies no pending migration either', async () => {
    const dir = await migrationsDir({ '0001_create': 'CREATE TABLE a (x int);\n' });
    await run(dir);
    await writeMigration(dir, '0001_create', 'CREATE TABLE a (x int, y int);\n');
    await writeMigration(dir, '0002_pending', 'CREATE TABLE b (x int);\n');

    await expect(run(dir)).rejects.toMatchObject({
      code: 'MIGRATION_REFUSED',
      message: expect.stringMatching(/0001_create was edited/),
    });

    expect(await exists(`${SCHEMA}.b`)).toBe(false);
    expect(await recordedNames()).toEqual(['0001_create']);
  });

  it('refuses to run when an applied migration folder is gone, and applies no pending migration either', async () => {
    const dir = await migrationsDir({
      '0001_create': 'CREATE TABLE a (x int);\n',
      '0002_create': 'CREATE TABLE b (x int);\n',
    });
    await run(dir);
    await rm(path.join(dir, '0001_create'), { recursive: true });
    await writeMigration(dir, '0003_pending', 'CREATE TABLE c (x int);\n');

    await expect(run(dir)).rejects.toMatchObject({
      code: 'MIGRATION_REFUSED',
      message: expect.stringMatching(/0001_create has no file/),
    });

    expect(await exists(`${SCHEMA}.c`)).toBe(false);
    expect(await recordedNames()).toEqual(['0001_create', '0002_create']);
  });

  it('runs a migration marked no-transaction outside a transaction, so CREATE INDEX CONCURRENTLY works', async () => {
    const dir = await migrationsDir({
      '0001_create': 'CREATE TABLE things (id int PRIMARY KEY, name text);\n',
      '0002_index': '-- aifactory:no-transaction\nCREATE INDEX CONCURRENTLY things_name_idx ON things (name);\n',
    });

    const statuses = await run(dir);

    expect(statuses[0]?.pending).toEqual([]);
    const index = await admin.query<{ indexdef: string }>('SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = $2', [
      SCHEMA,
      'things_name_idx',
    ]);
    expect(index.rows).toHaveLength(1);
    const valid = await admin.query<{ indisvalid: boolean; owner: string }>(
      `SELECT i.indisvalid, c.relowner::regrole::text AS owner
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indexrelid = to_regclass($1)`,
      [`${SCHEMA}.things_name_idx`],
    );
    expect(valid.rows).toEqual([{ indisvalid: true, owner: roles.owner }]);
    const rows = await history();
    expect(rows?.map((row) => row.migration_name)).toEqual(['0001_create', '0002_index']);
    expect(rows?.[1]?.finished_at).toBeInstanceOf(Date);
  });

  it('fails CREATE INDEX CONCURRENTLY in a migration without the no-transaction marker', async () => {
    const dir = await migrationsDir({
      '0001_create': 'CREATE TABLE things (id int PRIMARY KEY, name text);\n',
      '0002_index': 'CREATE INDEX CONCURRENTLY things_name_idx ON things (name);\n',
    });

    await expect(run(dir)).rejects.toMatchObject({
      code: 'MIGRATION_REFUSED',
      message: expect.stringMatching(/0002_index failed: .*transaction block/),
    });

    expect(await exists(`${SCHEMA}.things_name_idx`)).toBe(false);
    expect(await recordedNames()).toEqual(['0001_create']);
  });

  it('lets two runners started at once in separate processes both succeed, with each migration applied exactly once', async () => {
    const dir = await migrationsDir({
      '0001_create': 'CREATE TABLE side_effects (n serial);\n',
      '0002_insert': 'INSERT INTO side_effects DEFAULT VALUES;\nSELECT pg_sleep(0.5);\n',
    });
    const argument = JSON.stringify({ databaseUrl, targets: [targetFor(dir)], lockWaitMs: 30_000, lockTimeoutMs: 10_000 });

    const runs = [startRunner(argument), startRunner(argument)];
    // Both processes have loaded their modules; release them together.
    await Promise.all(runs.map((runner) => runner.ready));
    for (const runner of runs) runner.go();
    const results = await Promise.all(runs.map((runner) => runner.exit));

    // stderr rides along so that a failing run shows why.
    for (const result of results) {
      expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
    }
    const reports = results.map((result) => parseResult(result.stdout));
    // The runs really overlapped: the second one waited for the lock while the first applied.
    expect(Math.max(...reports.map((r) => r.startedAt))).toBeLessThan(Math.min(...reports.map((r) => r.finishedAt)));
    for (const report of reports) expect(report.statuses[0]?.pending).toEqual([]);

    const count = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${SCHEMA}.side_effects`);
    expect(count.rows[0]?.n).toBe(1);
    expect(await recordedNames()).toEqual(['0001_create', '0002_insert']);
  });

  it('refuses with MIGRATION_REFUSED and applies nothing while another session holds the migration lock', async () => {
    const dir = await migrationsDir({ '0001_create': 'CREATE TABLE locked_out (a int);\n' });
    const holder = new pg.Client({ connectionString: databaseUrl });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [ADVISORY_LOCK_KEY]);
      const started = Date.now();

      await expect(run(dir, { lockWaitMs: 300 })).rejects.toMatchObject({
        code: 'MIGRATION_REFUSED',
        message: expect.stringContaining('lock'),
      });

      const waited = Date.now() - started;
      expect(waited).toBeGreaterThanOrEqual(250);
      expect(waited).toBeLessThan(10_000);
      expect(await exists(`${SCHEMA}.locked_out`)).toBe(false);
      expect(await history()).toBeNull();

      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [ADVISORY_LOCK_KEY]);
      // Once the lock is free the same run goes through.
      await run(dir, { lockWaitMs: 300 });
      expect(await exists(`${SCHEMA}.locked_out`)).toBe(true);
    } finally {
      await holder.end();
    }
  });
});

describe('migrationStatus', () => {
  it('reports pending migrations before a run, none after, and a problem once an applied file is edited', async () => {
    const dir = await migrationsDir({
      '0001_create': 'CREATE TABLE a (x int);\n',
      '0002_create': 'CREATE TABLE b (x int);\n',
    });
    const targets = [targetFor(dir)];

    expect(await migrationStatus(admin, targets)).toEqual([
      { schema: SCHEMA, applied: [], pending: ['0001_create', '0002_create'], problems: [] },
    ]);

    await run(dir);
    expect(await migrationStatus(admin, targets)).toEqual([
      { schema: SCHEMA, applied: ['0001_create', '0002_create'], pending: [], problems: [] },
    ]);

    await writeMigration(dir, '0002_create', 'CREATE TABLE b (x bigint);\n');
    await writeMigration(dir, '0003_create', 'CREATE TABLE c (x int);\n');
    const [status] = await migrationStatus(admin, targets);
    expect(status?.pending).toEqual(['0003_create']);
    expect(status?.problems).toHaveLength(1);
    expect(status?.problems[0]).toMatch(/^mig: applied migration 0002_create was edited/);
  });
});

interface RunnerExit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts the fixture in its own node process; it waits for go() after it has printed "ready". */
function startRunner(argument: string): { ready: Promise<void>; go: () => void; exit: Promise<RunnerExit> } {
  const child = spawn(process.execPath, [FIXTURE, argument], { stdio: ['pipe', 'pipe', 'pipe'] });
  // A runner that already died makes go() write into a closed pipe; its exit code tells the story.
  child.stdin.on('error', () => undefined);
  let stdout = '';
  let stderr = '';
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (stdout.includes('ready\n')) markReady();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exit = new Promise<RunnerExit>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      // A runner that died before it got ready must not leave the test waiting for it.
      markReady();
      resolve({ code, stdout, stderr });
    });
  });
  return { ready, go: () => child.stdin.end('go\n'), exit };
}

function parseResult(stdout: string): { startedAt: number; finishedAt: number; statuses: Array<{ pending: string[] }> } {
  const line = stdout.split('\n').find((candidate) => candidate.startsWith('RESULT '));
  if (!line) throw new Error(`runner printed no result:\n${stdout}`);
  return JSON.parse(line.slice('RESULT '.length));
}
