import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import { loadConfigOrExit } from '@aifactory/config';
import { startJwksServer, type JwksServer } from '@aifactory/dev-identity';
import { devConfigSchema } from '../dev-config.js';
import { ensureDevKeys } from '../dev-keys.js';
import { devAssertion } from '../dev-token.js';
import { REPO_ROOT } from '../paths.js';
import { startBenchProcess, waitUntilServing, type BenchProcess } from './bench-processes.js';
import { freePort } from '@aifactory/testing';
import { composeFixtureSupergraph, FIXTURE_SUBGRAPHS, type FixtureSubgraphName } from './fixture-subgraphs.js';
import { GATEWAY_KINDS, startGateway, type RunningGateway } from './gateway-contenders.js';
import { addLoad, emptyLoad, percentile, runLoad, type LoadResult } from './load.js';
import { processTreeCpuMs } from './process-cpu.js';

interface BenchQuery {
  name: string;
  what: string;
  body: string;
}

const QUERIES: BenchQuery[] = [
  {
    name: 'small',
    what: 'one product, a field from each subgraph',
    body: JSON.stringify({ query: 'query SmallProduct { product(id: "p-0001") { id name stock } }' }),
  },
  {
    name: 'large',
    what: '50 products, 11 catalog fields joined with 3 inventory fields',
    body: JSON.stringify({
      query:
        'query LargeProductList { products(first: 50) { id sku name description priceCents currency category tags rating imageUrl createdAt stock restockEta warehouses { code city quantity } } }',
    }),
  },
];

type SubgraphHits = Record<FixtureSubgraphName, number>;

interface FixtureSubgraph {
  name: FixtureSubgraphName;
  url: string;
  hitsUrl: string;
  process: BenchProcess;
}

/** What one gateway answered to one query, checked against the others before any load. */
interface Answer {
  body: string;
  calls: SubgraphHits;
}

interface Measured {
  load: LoadResult;
  cpuMs: number;
  subgraphCalls: number;
}

async function subgraphHits(subgraphs: FixtureSubgraph[]): Promise<SubgraphHits> {
  const counts = await Promise.all(subgraphs.map(async (subgraph) => ((await (await fetch(subgraph.hitsUrl)).json()) as { hits: number }).hits));
  return Object.fromEntries(subgraphs.map((subgraph, index) => [subgraph.name, counts[index]!])) as SubgraphHits;
}

async function post(gateway: RunningGateway, query: BenchQuery): Promise<{ status: number; body: string }> {
  const res = await fetch(gateway.url, { method: 'POST', headers: { 'content-type': 'application/json', ...gateway.headers }, body: query.body });
  return { status: res.status, body: await res.text() };
}

function canonicalJson(value: unknown): string {
  const sortKeys = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(sortKeys);
    if (node === null || typeof node !== 'object') return node;
    return Object.fromEntries(
      Object.keys(node)
        .sort()
        .map((key) => [key, sortKeys((node as Record<string, unknown>)[key])]),
    );
  };
  return JSON.stringify(sortKeys(value));
}

function firstDifference(a: string, b: string): string {
  let at = 0;
  while (at < a.length && a[at] === b[at]) at += 1;
  return `at character ${at}: …${a.slice(Math.max(0, at - 40), at + 40)}… vs …${b.slice(Math.max(0, at - 40), at + 40)}…`;
}

/** How closely two answers match, strictest first; undefined when they differ in content. */
function bodyMatch(a: string, b: string): string | undefined {
  if (a === b) return 'byte-identical';
  if (a.trimEnd() === b.trimEnd()) return 'identical but for trailing whitespace';
  if (canonicalJson(JSON.parse(a)) === canonicalJson(JSON.parse(b))) return 'identical after JSON canonicalization (key order or spacing differs)';
  return undefined;
}

/**
 * Every gateway must give the same answer with the same subgraph calls, or
 * the CPU figures compare different work. Returns how the bodies matched.
 */
async function checkSameAnswers(gateways: RunningGateway[], subgraphs: FixtureSubgraph[], query: BenchQuery): Promise<{ match: string; answers: Map<RunningGateway, Answer> }> {
  const answers = new Map<RunningGateway, Answer>();
  for (const gateway of gateways) {
    const before = await subgraphHits(subgraphs);
    const { status, body } = await post(gateway, query);
    const after = await subgraphHits(subgraphs);
    if (status !== 200 || !body.startsWith('{"data"') || body.includes('"errors"')) {
      throw new Error(`${gateway.label} answered the ${query.name} query with ${status}: ${body.slice(0, 300)}`);
    }
    const calls = Object.fromEntries(FIXTURE_SUBGRAPHS.map((name) => [name, after[name] - before[name]])) as SubgraphHits;
    answers.set(gateway, { body, calls });
  }
  const [reference, ...others] = gateways as [RunningGateway, ...RunningGateway[]];
  const expected = answers.get(reference)!;
  const matches: string[] = [];
  for (const other of others) {
    const answer = answers.get(other)!;
    if (!isDeepStrictEqual(answer.calls, expected.calls)) {
      throw new Error(`${other.label} made other subgraph calls than ${reference.label} for the ${query.name} query: ${JSON.stringify(answer.calls)} vs ${JSON.stringify(expected.calls)}`);
    }
    const match = bodyMatch(expected.body, answer.body);
    if (!match) {
      const canonical = [canonicalJson(JSON.parse(expected.body)), canonicalJson(JSON.parse(answer.body))] as const;
      throw new Error(`${other.label} answered the ${query.name} query differently from ${reference.label}, ${firstDifference(...canonical)}`);
    }
    matches.push(`${other.label} ${match}`);
  }
  return { match: `bodies against the ${reference.label}'s: ${matches.join(', ')}`, answers };
}

async function startFixtureSubgraphs(workDir: string, started: BenchProcess[]): Promise<FixtureSubgraph[]> {
  const entry = fileURLToPath(new URL('./fixture-subgraph-main.js', import.meta.url));
  const subgraphs: FixtureSubgraph[] = [];
  for (const name of FIXTURE_SUBGRAPHS) {
    const port = await freePort();
    const child = startBenchProcess({ name, args: [entry, name, String(port)], env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' }, cwd: REPO_ROOT, logDir: workDir });
    started.push(child);
    const subgraph = { name, url: `http://127.0.0.1:${port}/graphql`, hitsUrl: `http://127.0.0.1:${port}/hits`, process: child };
    await waitUntilServing(child, async () => (await fetch(subgraph.hitsUrl)).ok);
    subgraphs.push(subgraph);
  }
  return subgraphs;
}

const fmt = (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : '-');

function report(query: BenchQuery, gateways: RunningGateway[], results: Map<RunningGateway, Measured>, answer: Answer, match: string): boolean {
  const out = process.stdout;
  const calls = FIXTURE_SUBGRAPHS.map((name) => `${name} ${answer.calls[name]}`).join(', ');
  out.write(`\n${query.name} query: ${query.what}; ${answer.body.length} B response, ${match}; subgraph calls per request: ${calls}\n\n`);
  out.write('| gateway | requests | errors | req/s | p50 ms | p99 ms | CPU ms/req | subgraph calls/req |\n|---|---|---|---|---|---|---|---|\n');
  const rows = new Map(
    gateways.map((gateway) => {
      const { load, cpuMs, subgraphCalls } = results.get(gateway)!;
      const sorted = [...load.latenciesMs].sort((a, b) => a - b);
      const row = { rps: load.requests / load.seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99), cpu: cpuMs / Math.max(1, load.requests) };
      out.write(
        `| ${gateway.label} | ${load.requests} | ${load.errors} | ${fmt(row.rps, 0)} | ${fmt(row.p50)} | ${fmt(row.p99)} | ${fmt(row.cpu, 3)} | ${fmt(subgraphCalls / Math.max(1, load.requests))} |\n`,
      );
      return [gateway.kind, { ...row, label: gateway.label }];
    }),
  );
  const platform = rows.get('platform')!;
  const others = gateways.filter((gateway) => gateway.kind !== 'platform').map((gateway) => rows.get(gateway.kind)!);
  out.write('\n| ratio | CPU ms/req | req/s | p50 | p99 |\n|---|---|---|---|---|\n');
  for (const other of others) {
    out.write(`| platform / ${other.label} | ${fmt(platform.cpu / other.cpu)} | ${fmt(platform.rps / other.rps)} | ${fmt(platform.p50 / other.p50)} | ${fmt(platform.p99 / other.p99)} |\n`);
  }
  const met = others.every((other) => platform.cpu < other.cpu);
  out.write(`\nGoal for the ${query.name} query, less CPU per request than ${others.map((other) => other.label).join(' and ')}: ${met ? 'met' : 'NOT met'}\n`);
  return met;
}

/**
 * `npm run bench -- gateways`: the platform gateway with its edge features on
 * against plain @apollo/gateway and Hive Gateway, on fixture subgraphs only
 * this run starts. Returns the exit code: 1 when the gateways disagree or
 * fail requests, 0 otherwise (the goal's verdict is printed, not enforced).
 */
export async function runGatewayComparison(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      duration: { type: 'string', default: '12' },
      concurrency: { type: 'string', default: '16' },
      rounds: { type: 'string', default: '4' },
      warmup: { type: 'string', default: '2' },
    },
  });
  const durationMs = Number(values.duration) * 1000;
  const warmupMs = Number(values.warmup) * 1000;
  const concurrency = Number(values.concurrency);
  const rounds = Number(values.rounds);
  if (![durationMs, warmupMs, concurrency, rounds].every((value) => Number.isFinite(value) && value >= 0) || concurrency < 1 || rounds < 1) {
    process.stderr.write('usage: npm run bench -- gateways [--duration s] [--warmup s] [--concurrency n] [--rounds n]\n');
    return 2;
  }
  const config = loadConfigOrExit(devConfigSchema, 'bench');
  const workDir = await mkdtemp(path.join(tmpdir(), 'aif-gateway-bench-'));
  const started: BenchProcess[] = [];
  let jwks: JwksServer | undefined;
  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      await Promise.all(started.map((child) => child.stop()));
      await jwks?.close();
    })());
  const onSignal = (signal: NodeJS.Signals) => {
    void stopAll()
      .then(() => rm(workDir, { recursive: true, force: true }))
      .then(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let keepWorkDir = false;
  try {
    const subgraphs = await startFixtureSubgraphs(workDir, started);
    const subgraphUrls = Object.fromEntries(subgraphs.map((subgraph) => [subgraph.name, subgraph.url])) as Record<FixtureSubgraphName, string>;
    const supergraphFile = path.join(workDir, 'supergraph.graphql');
    await writeFile(supergraphFile, composeFixtureSupergraph(subgraphUrls));

    // Keys of this run only: the benchmark needs nothing from .dev and leaves nothing there.
    const keys = await ensureDevKeys(path.join(workDir, 'keys'));
    jwks = await startJwksServer([keys.assertionKey]);
    const assertion = await devAssertion(config, keys.assertionKey, { email: config.DEV_ADMIN_EMAIL, roles: ['platform_admin'] });
    const setup = { workDir, supergraphFile, subgraphUrls, config, keys, jwksUrl: jwks.url, assertion };

    const gateways: RunningGateway[] = [];
    // One at a time: each start-up is CPU-heavy and would slow the others' on two cores.
    for (const kind of GATEWAY_KINDS) {
      const gateway = await startGateway(kind, setup);
      started.push(gateway.process);
      await waitUntilServing(gateway.process, async () => (await post(gateway, QUERIES[0]!)).status === 200);
      gateways.push(gateway);
    }

    process.stdout.write(
      `Gateway comparison on fixture subgraphs (${FIXTURE_SUBGRAPHS.join(', ')}): ${concurrency} concurrent clients; per gateway and query ` +
        `${values.duration} s in ${rounds} alternating rounds after ${values.warmup} s warm-up. ` +
        "CPU is user + system time of each gateway's whole process tree (subgraphs, Redis and this load generator are not counted).\n" +
        'platform gateway: every edge feature on (platform_admin assertion verified on each request, internal JWTs, limits and rate limits ' +
        `set too high to refuse), logging at ${config.LOG_LEVEL} to a file. Hive Gateway: in-flight subgraph request deduplication off.\n`,
    );

    let allMet = true;
    let failedRequests = 0;
    const problems: string[] = [];
    for (const query of QUERIES) {
      const { match, answers } = await checkSameAnswers(gateways, subgraphs, query);
      // During load each answer is compared with the one checked above: a cheap string compare.
      const request = (gateway: RunningGateway, expected: string) => async () => {
        const { status, body } = await post(gateway, query);
        if (status !== 200 || body !== expected) throw new Error(`${gateway.label}: ${status}`);
      };
      const requestOf = new Map(gateways.map((gateway) => [gateway, request(gateway, answers.get(gateway)!.body)]));
      for (const gateway of gateways) await runLoad(requestOf.get(gateway)!, concurrency, warmupMs);

      const results = new Map<RunningGateway, Measured>(gateways.map((gateway) => [gateway, { load: emptyLoad(), cpuMs: 0, subgraphCalls: 0 }]));
      for (let round = 0; round < rounds; round += 1) {
        // Rotated each round, so no gateway always follows the same one (GC debt, caches, turbo clocks).
        const order = gateways.map((_, index) => gateways[(index + round) % gateways.length]!);
        for (const gateway of order) {
          const measured = results.get(gateway)!;
          const hitsBefore = await subgraphHits(subgraphs);
          const cpuBefore = processTreeCpuMs(gateway.process.pid);
          addLoad(measured.load, await runLoad(requestOf.get(gateway)!, concurrency, durationMs / rounds));
          measured.cpuMs += processTreeCpuMs(gateway.process.pid) - cpuBefore;
          const hitsAfter = await subgraphHits(subgraphs);
          measured.subgraphCalls += FIXTURE_SUBGRAPHS.reduce((sum, name) => sum + hitsAfter[name] - hitsBefore[name], 0);
        }
      }
      const callsPerRequest = FIXTURE_SUBGRAPHS.reduce((sum, name) => sum + answers.get(gateways[0]!)!.calls[name], 0);
      for (const [gateway, measured] of results) {
        failedRequests += measured.load.errors;
        if (measured.load.errors === 0 && measured.subgraphCalls !== callsPerRequest * measured.load.requests) {
          problems.push(`${gateway.label} made ${measured.subgraphCalls} subgraph calls for ${measured.load.requests} ${query.name} requests under load, not ${callsPerRequest} each`);
        }
      }
      allMet = report(query, gateways, results, answers.get(gateways[0]!)!, match) && allMet;
    }
    process.stdout.write(`\nGoal (platform gateway below both others in CPU per request, on both queries): ${allMet ? 'met' : 'NOT met'}\n`);
    if (failedRequests > 0) problems.push(`${failedRequests} requests failed`);
    if (problems.length > 0) {
      process.stderr.write(`bench: the figures above are not comparable: ${problems.join('; ')} (logs in ${workDir})\n`);
      keepWorkDir = true;
      return 1;
    }
    return 0;
  } catch (error) {
    keepWorkDir = true;
    process.stderr.write(`bench: ${(error as Error).message}\n(logs in ${workDir})\n`);
    return 1;
  } finally {
    await stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!keepWorkDir) await rm(workDir, { recursive: true, force: true });
  }
}
