import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { createLogger } from '@aifactory/logging';

export interface PoolOptions {
  url: string;
  schema: string;
  max: number;
  applicationName: string;
}

/**
 * One pool per process, sized from config (README: connection budget). The
 * search_path pins raw SQL to the subgraph's own schema.
 */
export function createPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max,
    application_name: options.applicationName,
    options: `-c search_path=${options.schema}`,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 5_000,
  });
  // An idle connection the server ends (a restart, a forced drop) is an 'error' event; unheard, it would end the process.
  const logger = createLogger({ service: options.applicationName, level: 'warn' });
  pool.on('error', (error) => logger.warn({ err: error }, 'idle database connection lost; the pool opens a new one when needed'));
  return pool;
}

export interface Database<TClient> {
  prisma: TClient;
  pool: pg.Pool;
  /** The Postgres schema the pool's search_path pins: the subgraph's own, holding its outbox. */
  schema: string;
  /** Proves the app role can still reach its schema. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Builds a subgraph's Prisma client on the Rust-free pg adapter, over a pool it owns. */
export function openDatabase<TClient extends { $disconnect(): Promise<void> }>(
  options: PoolOptions,
  createClient: (adapter: PrismaPg) => TClient,
): Database<TClient> {
  const pool = createPool(options);
  const prisma = createClient(new PrismaPg(pool, { schema: options.schema }));
  return {
    prisma,
    pool,
    schema: options.schema,
    ping: async () => {
      await pool.query('SELECT 1');
    },
    close: async () => {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}
