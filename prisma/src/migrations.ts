import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { AppError } from '@aifactory/errors';
import type { Logger } from '@aifactory/logging';
import { quoteIdent, type SchemaRoles } from './layout.js';
import { splitSqlStatements } from './sql-split.js';

/** A migration whose SQL cannot run in a transaction (CREATE INDEX CONCURRENTLY) carries this line. */
export const NO_TRANSACTION_MARKER = /^--\s*aifactory:no-transaction\s*$/m;
export const MIGRATIONS_TABLE = '_prisma_migrations';
/** One lock for every migration run against a database: runs queue instead of interleaving. */
const ADVISORY_LOCK_KEY = 0x61_69_66_6d; // "aifm"

export interface MigrationFile {
  name: string;
  sql: string;
  checksum: string;
  transactional: boolean;
}

export interface MigrationTarget extends SchemaRoles {
  migrationsDir: string;
}

export interface AppliedMigration {
  name: string;
  checksum: string;
  finishedAt: Date | null;
}

export interface SchemaStatus {
  schema: string;
  applied: string[];
  pending: string[];
  /** Why this schema may not be migrated; empty when it may. */
  problems: string[];
}

export interface MigrateOptions {
  /** Admin connection to the target database (a superuser or a member of each owner role). */
  databaseUrl: string;
  targets: MigrationTarget[];
  lockWaitMs: number;
  lockTimeoutMs: number;
  logger: Logger;
}

export function checksumOf(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

/** Prisma's folder layout: `<dir>/<name>/migration.sql`, applied in name order. */
export async function readMigrationFiles(migrationsDir: string): Promise<MigrationFile[]> {
  // A missing folder is a wrong path, not "no migrations": say so instead of reporting up to date.
  const entries = await readdir(migrationsDir).catch((error: unknown) => {
    throw new AppError('MIGRATION_REFUSED', `no migrations folder at ${migrationsDir}`, { cause: error });
  });
  const files: MigrationFile[] = [];
  for (const name of entries.sort()) {
    const dir = path.join(migrationsDir, name);
    if (!(await stat(dir)).isDirectory()) continue;
    const sql = await readFile(path.join(dir, 'migration.sql'), 'utf8').catch((error: unknown) => {
      throw new AppError('MIGRATION_REFUSED', `${dir} has no migration.sql`, { cause: error });
    });
    files.push({ name, sql, checksum: checksumOf(sql), transactional: !NO_TRANSACTION_MARKER.test(sql) });
  }
  return files;
}

async function ensureMigrationsTable(client: pg.ClientBase, target: MigrationTarget): Promise<void> {
  const table = `${quoteIdent(target.schema)}.${quoteIdent(MIGRATIONS_TABLE)}`;
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL ROLE ${quoteIdent(target.owner)}`);
    // Prisma's own table layout, so `prisma migrate deploy` could take over.
    await client.query(`CREATE TABLE IF NOT EXISTS ${table} (
      "id" VARCHAR(36) PRIMARY KEY NOT NULL,
      "checksum" VARCHAR(64) NOT NULL,
      "finished_at" TIMESTAMPTZ,
      "migration_name" VARCHAR(255) NOT NULL,
      "logs" TEXT,
      "rolled_back_at" TIMESTAMPTZ,
      "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
      "applied_steps_count" INTEGER NOT NULL DEFAULT 0
    )`);
    // The app role's default privileges would cover this table too; the history is the migrator's alone.
    await client.query(`REVOKE ALL ON ${table} FROM ${quoteIdent(target.app)}`);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}

async function readApplied(client: pg.ClientBase, schema: string): Promise<AppliedMigration[]> {
  const exists = await client.query('SELECT to_regclass($1) AS t', [`${quoteIdent(schema)}.${quoteIdent(MIGRATIONS_TABLE)}`]);
  if (exists.rows[0]?.t === null) return [];
  const { rows } = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
    `SELECT migration_name, checksum, finished_at FROM ${quoteIdent(schema)}.${quoteIdent(MIGRATIONS_TABLE)}
     WHERE rolled_back_at IS NULL ORDER BY migration_name`,
  );
  return rows.map((row) => ({ name: row.migration_name, checksum: row.checksum, finishedAt: row.finished_at }));
}

/** Compares the recorded history with the files; forward only, so any divergence is a refusal. */
export function compareHistory(schema: string, files: MigrationFile[], applied: AppliedMigration[]): SchemaStatus {
  const byName = new Map(files.map((file) => [file.name, file]));
  const appliedNames = new Set(applied.map((migration) => migration.name));
  const problems: string[] = [];
  for (const migration of applied) {
    const file = byName.get(migration.name);
    if (!file) problems.push(`${schema}: applied migration ${migration.name} has no file any more`);
    else if (file.checksum !== migration.checksum) problems.push(`${schema}: applied migration ${migration.name} was edited after it ran`);
    if (migration.finishedAt === null) {
      problems.push(`${schema}: migration ${migration.name} started but never finished; repair the database by hand, then record it`);
    }
  }
  return {
    schema,
    applied: applied.map((migration) => migration.name),
    pending: files.filter((file) => !appliedNames.has(file.name)).map((file) => file.name),
    problems,
  };
}

export async function migrationStatus(client: pg.ClientBase, targets: MigrationTarget[]): Promise<SchemaStatus[]> {
  const statuses: SchemaStatus[] = [];
  for (const target of targets) {
    statuses.push(compareHistory(target.schema, await readMigrationFiles(target.migrationsDir), await readApplied(client, target.schema)));
  }
  return statuses;
}

async function applyMigration(client: pg.ClientBase, target: MigrationTarget, file: MigrationFile): Promise<void> {
  const table = `${quoteIdent(target.schema)}.${quoteIdent(MIGRATIONS_TABLE)}`;
  const owner = quoteIdent(target.owner);
  const schema = quoteIdent(target.schema);
  const id = randomUUID();
  if (file.transactional) {
    await client.query('BEGIN');
    try {
      await client.query(`SET LOCAL ROLE ${owner}`);
      await client.query(`SET LOCAL search_path TO ${schema}`);
      await client.query(file.sql);
      await client.query(
        `INSERT INTO ${table} (id, checksum, migration_name, started_at, finished_at, applied_steps_count)
         VALUES ($1, $2, $3, now(), clock_timestamp(), 1)`,
        [id, file.checksum, file.name],
      );
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK');
      throw error;
    }
    return;
  }
  // Recorded first, finished last: a crash in between leaves an unfinished row that blocks later runs.
  await client.query(`SET ROLE ${owner}`);
  try {
    await client.query(`INSERT INTO ${table} (id, checksum, migration_name) VALUES ($1, $2, $3)`, [id, file.checksum, file.name]);
    await client.query(`SET search_path TO ${schema}`);
    for (const statement of splitSqlStatements(file.sql)) await client.query(statement);
    await client.query(`UPDATE ${table} SET finished_at = clock_timestamp(), applied_steps_count = 1 WHERE id = $1`, [id]);
  } finally {
    await client.query('RESET ROLE');
    await client.query('RESET search_path');
  }
}

/**
 * Applies every pending migration of every target, in name order, under one
 * advisory lock. Refuses before changing anything when an applied migration
 * was edited, lost or left unfinished.
 */
export async function migrate(options: MigrateOptions): Promise<SchemaStatus[]> {
  const client = new pg.Client({ connectionString: options.databaseUrl, application_name: 'aifactory-migrate' });
  await client.connect();
  try {
    await client.query(`SET lock_timeout = ${Math.trunc(options.lockWaitMs)}`);
    try {
      await client.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEY]);
    } catch (error) {
      throw new AppError('MIGRATION_REFUSED', `another migration run held the lock for over ${options.lockWaitMs} ms`, { cause: error });
    }
    try {
      await client.query(`SET lock_timeout = ${Math.trunc(options.lockTimeoutMs)}`);
      const statuses = await migrationStatus(client, options.targets);
      const problems = statuses.flatMap((status) => status.problems);
      if (problems.length > 0) throw new AppError('MIGRATION_REFUSED', `refusing to migrate:\n  ${problems.join('\n  ')}`);
      for (const target of options.targets) {
        await ensureMigrationsTable(client, target);
        const files = await readMigrationFiles(target.migrationsDir);
        const status = statuses.find((candidate) => candidate.schema === target.schema);
        for (const file of files.filter((candidate) => status?.pending.includes(candidate.name))) {
          options.logger.info({ schema: target.schema, migration: file.name }, 'applying migration');
          try {
            await applyMigration(client, target, file);
          } catch (error) {
            throw new AppError('MIGRATION_REFUSED', `${target.schema}/${file.name} failed: ${(error as Error).message}`, { cause: error });
          }
        }
      }
      return await migrationStatus(client, options.targets);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [ADVISORY_LOCK_KEY]);
    }
  } finally {
    await client.end();
  }
}
