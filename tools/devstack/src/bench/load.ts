import { performance } from 'node:perf_hooks';

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  latenciesMs: number[];
}

/**
 * Runs `call` from `concurrency` loops for `durationMs`. Each call is one
 * logical request (which may be several HTTP calls); its latency is timed
 * end to end.
 */
export async function runLoad(call: () => Promise<void>, concurrency: number, durationMs: number): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        await call();
        latenciesMs.push(performance.now() - t0);
      } catch {
        errors += 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { requests: latenciesMs.length, errors, seconds: (performance.now() - started) / 1000, latenciesMs };
}

export function percentile(sortedMs: number[], p: number): number {
  if (sortedMs.length === 0) return Number.NaN;
  const index = Math.min(sortedMs.length - 1, Math.ceil((p / 100) * sortedMs.length) - 1);
  return sortedMs[Math.max(0, index)]!;
}

export function emptyLoad(): LoadResult {
  return { requests: 0, errors: 0, seconds: 0, latenciesMs: [] };
}

/** Adds one round to a total, so alternating rounds report as one run. */
export function addLoad(total: LoadResult, round: LoadResult): void {
  total.requests += round.requests;
  total.errors += round.errors;
  total.seconds += round.seconds;
  for (const latency of round.latenciesMs) total.latenciesMs.push(latency);
}
