import { setTimeout as sleep } from 'node:timers/promises';
import type { RunningGateway } from '@aifactory/gateway/server';
import { addLoad, emptyLoad, percentile, runLoad, type LoadResult } from './load.js';
import { progress } from './teardown.js';

export const fmt = (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : '-');

export function positiveInt(value: string | undefined): number | undefined {
  const parsed = Number(value);
  return Number.isInteger(parsed) && parsed > 0 ? parsed : undefined;
}

/** A GraphQL call through one gateway that must succeed; `headers` carry the credential. */
export async function graphql(gateway: RunningGateway, headers: Record<string, string>, query: string, variables?: unknown): Promise<any> {
  const res = await fetch(`${gateway.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: any; errors?: Array<{ message: string; extensions?: { code?: string } }> };
  if (res.status !== 200 || body.errors) throw new Error(`gateway answered ${res.status}: ${JSON.stringify(body.errors ?? body)}`);
  return body.data;
}

export async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(5);
  }
}

function cpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

export interface SideRow {
  requests: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
  /** This whole process's CPU per request (gateways and subgraphs run in it). */
  cpu: number;
}

export interface SideBySideOptions {
  /** Prefixes the progress lines. */
  name: string;
  durationMs: number;
  concurrency: number;
  rounds: number;
}

/**
 * The same request two ways, measured in one run: 2 s warm-up each, then
 * rounds that alternate sides and which side goes first, so drift on a
 * shared machine hits both alike.
 */
export async function measureSideBySide(on: () => Promise<void>, off: () => Promise<void>, options: SideBySideOptions): Promise<{ on: SideRow; off: SideRow }> {
  progress(`${options.name}: warming up both sides`);
  await runLoad(on, options.concurrency, 2_000);
  await runLoad(off, options.concurrency, 2_000);
  const totals = { on: emptyLoad(), off: emptyLoad() };
  const cpu = { on: 0, off: 0 };
  for (let round = 0; round < options.rounds; round++) {
    progress(`${options.name}: round ${round + 1} of ${options.rounds}`);
    // Each round the other side goes first, so whatever the order favours is shared.
    for (const side of round % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
      const before = cpuMs();
      addLoad(totals[side], await runLoad(side === 'on' ? on : off, options.concurrency, options.durationMs / options.rounds));
      cpu[side] += cpuMs() - before;
    }
  }
  return { on: sideRow(totals.on, cpu.on), off: sideRow(totals.off, cpu.off) };
}

function sideRow(load: LoadResult, cpuTotal: number): SideRow {
  const sorted = [...load.latenciesMs].sort((a, b) => a - b);
  return { requests: load.requests, errors: load.errors, rps: load.requests / load.seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99), cpu: cpuTotal / Math.max(1, load.requests) };
}

/** The markdown table: both sides and what "on" adds. */
export function sideBySideTable(on: SideRow, off: SideRow): string {
  return (
    '| side | requests | errors | req/s | p50 ms | p99 ms | CPU ms/req |\n|---|---|---|---|---|---|---|\n' +
    `| on | ${on.requests} | ${on.errors} | ${fmt(on.rps, 0)} | ${fmt(on.p50)} | ${fmt(on.p99)} | ${fmt(on.cpu, 3)} |\n` +
    `| off | ${off.requests} | ${off.errors} | ${fmt(off.rps, 0)} | ${fmt(off.p50)} | ${fmt(off.p99)} | ${fmt(off.cpu, 3)} |\n` +
    `| added | | | | ${fmt(on.p50 - off.p50, 3)} | ${fmt(on.p99 - off.p99, 3)} | ${fmt(on.cpu - off.cpu, 3)} |\n`
  );
}

/** p50, p99 and max of propagation times, and how many made the 1 s goal. */
export function propagationTable(label: string, timings: number[]): string {
  const sorted = [...timings].sort((a, b) => a - b);
  return (
    `| ${label} | p50 ms | p99 ms | max ms | within 1 s |\n|---|---|---|---|---|\n` +
    `| ${timings.length} | ${fmt(percentile(sorted, 50), 1)} | ${fmt(percentile(sorted, 99), 1)} | ${fmt(sorted[sorted.length - 1] ?? Number.NaN, 1)} | ${timings.filter((ms) => ms <= 1_000).length}/${timings.length} |\n`
  );
}
