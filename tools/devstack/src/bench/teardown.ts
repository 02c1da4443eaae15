import pg from 'pg';
import { TEST_ADMIN_URL, type TestDatabase } from '@aifactory/testing';

const benchStarted = Date.now();

/** A progress line on stderr, so a long set-up is not mistaken for a hang; stdout keeps only the results. */
export function progress(what: string): void {
  process.stderr.write(`[${((Date.now() - benchStarted) / 1000).toFixed(1)} s] ${what}\n`);
}

/**
 * What a benchmark created on the shared Postgres, Redis and NATS (and the
 * processes it started), undone newest first: at the end of a part, and on
 * Ctrl-C too, where no `finally` would run. Each step runs once.
 */
export class Teardown {
  private readonly steps: { what: string; undo: () => Promise<unknown> }[] = [];
  private running: Promise<void> | undefined;

  add(what: string, undo: () => Promise<unknown>): void {
    this.steps.push({ what, undo });
  }

  /** A second call (Ctrl-C during a part's own teardown) joins the one under way: steps never overlap. */
  run(): Promise<void> {
    this.running ??= this.drain().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async drain(): Promise<void> {
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      try {
        await step.undo();
      } catch (error) {
        process.stderr.write(`bench: could not ${step.what}: ${(error as Error).message}\n`);
      }
    }
  }
}

/**
 * Drops a private test database once no service role is connected to it, or after
 * `timeoutMs` regardless. pg-pool's end() resolves before its connections
 * have closed; a forced drop then cuts them, and a pool without an error
 * listener (a subgraph's, say) crashes the benchmark with 57P01.
 */
export async function dropWhenIdle(db: TestDatabase, timeoutMs = 5_000): Promise<void> {
  const server = new pg.Client({ connectionString: TEST_ADMIN_URL });
  await server.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await server.query<{ n: number }>(
        // The services' roles only: the admin connections drop() closes itself.
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND left(usename, length($2)) = $2',
        [db.layout.database, db.layout.rolePrefix],
      );
      if ((rows[0]?.n ?? 0) === 0 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await server.end();
  }
  await db.drop();
}
