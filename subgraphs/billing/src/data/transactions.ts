import type pg from 'pg';

/** A connection inside a transaction that `inTransaction` opened; commit and rollback are its business. */
export type Tx = pg.PoolClient;

/** The pool, or a connection taken from it: anything that runs a (named) statement. */
export type Db = pg.Pool | pg.PoolClient;

/** Deadlock and serialization failures: Postgres rolled the transaction back, and running it again is safe. */
const RETRYABLE = new Set(['40P01', '40001']);
const ATTEMPTS = 3;

/**
 * Runs `work` in one READ COMMITTED transaction on a pooled connection and
 * commits only if it returns. Ledger writers take their row locks in one
 * order (organization funds, then balances, then budgets), so a deadlock is
 * a defect; should one happen anyway, Postgres has undone everything and the
 * work is run again, at most three times.
 */
export async function inTransaction<T>(pool: pg.Pool, work: (tx: Tx) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    const client = await pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      try {
        await client.query('ROLLBACK');
      } catch {
        // The connection itself failed: do not hand it back to the pool.
        broken = true;
      }
      if (attempt < ATTEMPTS && RETRYABLE.has((error as { code?: string }).code ?? '')) continue;
      throw error;
    } finally {
      client.release(broken);
    }
  }
}
