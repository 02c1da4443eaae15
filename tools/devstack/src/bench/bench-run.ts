import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { positiveInt } from './side-by-side.js';
import { Teardown } from './teardown.js';

export const BENCH_PARTS = ['overhead', 'propagation', 'coldload'] as const;
export type BenchPart = (typeof BENCH_PARTS)[number];

export interface SideBySideArgs {
  durationMs: number;
  concurrency: number;
  rounds: number;
  /** Every other option, as a positive whole number. */
  counts: Record<string, number>;
  /** The one part to run; all of them when left out. */
  only: BenchPart | undefined;
}

/**
 * `--duration --concurrency --rounds [--<count> ...] [--only part]`, the
 * options the on/off, propagation and cold-load benchmarks share; undefined
 * (and the usage on stderr) for anything that is not a positive number or a part.
 */
export function parseSideBySideArgs(args: string[], counts: Record<string, string>, usage: string): SideBySideArgs | undefined {
  const { values } = parseArgs({
    args,
    options: {
      duration: { type: 'string', default: '8' },
      concurrency: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '4' },
      only: { type: 'string' },
      ...Object.fromEntries(Object.entries(counts).map(([name, fallback]) => [name, { type: 'string' as const, default: fallback }])),
    },
  });
  const durationMs = (positiveInt(values.duration) ?? 0) * 1000;
  const concurrency = positiveInt(values.concurrency);
  const rounds = positiveInt(values.rounds);
  const given = values as Record<string, string | undefined>;
  const parsedCounts = Object.fromEntries(Object.keys(counts).map((name) => [name, positiveInt(given[name])]));
  const only = values.only as BenchPart | undefined;
  if (!durationMs || !concurrency || !rounds || Object.values(parsedCounts).some((count) => count === undefined) || (only !== undefined && !BENCH_PARTS.includes(only))) {
    process.stderr.write(usage);
    return undefined;
  }
  return { durationMs, concurrency, rounds, counts: parsedCounts as Record<string, number>, only };
}

/**
 * Runs a benchmark in a scratch directory with a teardown that also runs on
 * SIGINT/SIGTERM, so an interrupted run leaves no database, stream or Redis
 * key behind. The directory (its logs) is kept only when the run failed:
 * it threw, or `body` returned a non-zero exit code. Returns the exit code.
 */
export async function inBenchWorkspace(name: string, body: (workDir: string, teardown: Teardown) => Promise<number | void>): Promise<number> {
  const workDir = await mkdtemp(path.join(tmpdir(), `aif-${name}-bench-`));
  const teardown = new Teardown();
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`bench: ${signal}, removing what this run created\n`);
    void teardown.run().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let keepWorkDir = false;
  try {
    const code = (await body(workDir, teardown)) ?? 0;
    keepWorkDir = code !== 0;
    return code;
  } catch (error) {
    keepWorkDir = true;
    process.stderr.write(`bench: ${(error as Error).stack ?? String(error)}\n(logs in ${workDir})\n`);
    return 1;
  } finally {
    await teardown.run();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!keepWorkDir) await rm(workDir, { recursive: true, force: true });
  }
}
