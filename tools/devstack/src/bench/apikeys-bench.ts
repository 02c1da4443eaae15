import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import { measureColdLoad } from '@aifactory/access-model';
import { parseConfig } from '@aifactory/config';
import { gatewayConfigSchema } from '@aifactory/gateway/config';
import { apiKeyPrincipal, startGateway, type RunningGateway } from '@aifactory/gateway/server';
import { initialPepperFile, issueApiKey, parseApiKey, PepperRing, writePepperFile, type Principal } from '@aifactory/service-auth';
import { TEST_NATS_URL } from '@aifactory/testing';
import { gatewayEnvironment } from '../wiring.js';
import { percentile } from './load.js';
import { BENCH_ADMIN_GROUP, startBenchPlatform, type BenchPlatform } from './bench-platform.js';
import { inBenchWorkspace, parseSideBySideArgs } from './bench-run.js';
import { fmt, graphql, measureSideBySide, propagationTable, sideBySideTable, until } from './side-by-side.js';
import { progress, type Teardown } from './teardown.js';

const USAGE = 'usage: npm run bench -- apikeys [--duration 8] [--concurrency 8] [--rounds 4] [--revokes 100] [--keys 100000] [--only overhead|propagation|coldload]\n';
/** A read a key with platform:project:read may make: iam checks the scope, then the project with can(). */
const PROJECT_READ = 'query P($id: ID!) { project(id: $id) { id name } }';

/**
 * `npm run bench -- apikeys` (issue 15, Benchmark): the same read
 * authenticated by an API key and sent with no credential at all, side by
 * side; how long a revocation takes to reach two gateway instances, over
 * many revokes; what one key check costs; and the cold load of a read model
 * of many keys. The platform parts run the whole platform in this process
 * on a private database, stream prefix and Redis prefix, removed at the end.
 */
export async function runApiKeysBench(args: string[]): Promise<number> {
  const parsed = parseSideBySideArgs(args, { revokes: '100', keys: '100000' }, USAGE);
  if (parsed === undefined) return 2;
  const { durationMs, concurrency, rounds, counts, only } = parsed;
  return inBenchWorkspace('apikeys', async (workDir, teardown) => {
    await printKeyCheckCost(workDir);
    if (only === undefined || only === 'overhead' || only === 'propagation') {
      const stack = await startKeyStack(workDir, teardown);
      if (only !== 'propagation') await measureOverhead(stack, { durationMs, concurrency, rounds });
      if (only !== 'overhead') await measurePropagation(stack, counts.revokes!);
      await teardown.run();
    }
    if (only === undefined || only === 'coldload') await printColdLoad(counts.keys!);
  });
}

/** What the gateway spends on one presented key before any lookup result matters: parse with checksum, then HMAC and compare. */
async function printKeyCheckCost(workDir: string): Promise<void> {
  const file = path.join(workDir, 'pepper.json');
  await writePepperFile(file, initialPepperFile());
  const ring = await PepperRing.load(file, { reloadEveryMs: 0 });
  const key = issueApiKey('live');
  const hash = ring.hash(key.secret, 1);
  const timings: number[] = [];
  for (let i = 0; i < 100_000; i++) {
    const t0 = performance.now();
    const parsed = parseApiKey(key.raw);
    if (parsed === null || !ring.verify(parsed.secret, 1, hash)) throw new Error('the key did not verify');
    timings.push(performance.now() - t0);
  }
  ring.close();
  timings.sort((a, b) => a - b);
  process.stdout.write(
    `\nKey check: parse (shape and CRC32 checksum) + HMAC-SHA256 with the pepper + constant-time compare, 100,000 checks\n\n` +
      `| p50 µs | p99 µs | max µs |\n|---|---|---|\n| ${fmt(percentile(timings, 50) * 1000)} | ${fmt(percentile(timings, 99) * 1000)} | ${fmt(timings[timings.length - 1]! * 1000)} |\n`,
  );
}

interface KeyStack {
  bench: BenchPlatform;
  admin: string;
  projectId: string;
  serviceAccountId: string;
  key: string;
  keyId: string;
}

function asAdmin(gateway: RunningGateway, admin: string, query: string, variables?: unknown): Promise<any> {
  return graphql(gateway, { 'x-pomerium-jwt-assertion': admin, 'idempotency-key': randomUUID() }, query, variables);
}

async function createKey(gateway: RunningGateway, stack: Pick<KeyStack, 'admin' | 'serviceAccountId'>): Promise<{ secret: string; id: string }> {
  const created = await asAdmin(gateway, stack.admin, 'mutation K($a: ID!) { createApiKey(input: { serviceAccountId: $a, scopes: ["platform:project:read"] }) { secret apiKey { id } } }', {
    a: stack.serviceAccountId,
  });
  return { secret: created.createApiKey.secret, id: created.createApiKey.apiKey.id };
}

/** The platform, a project, a service account with a key that may read the project, and a request budget no run reaches. */
async function startKeyStack(workDir: string, teardown: Teardown): Promise<KeyStack> {
  const bench = await startBenchPlatform({
    name: 'apikeys',
    workDir,
    teardown,
    poolSize: 4,
    // Every revoke is refused once more at each gateway on purpose; none of it is an attack.
    gatewayOverrides: { API_KEY_FAILURE_LIMIT: JSON.stringify({ limit: 1_000_000, windowSeconds: 60 }) },
  });
  const { gateway } = bench.platform;
  await until('the access read model', () => (gateway.accessModel.isFresh() ? true : undefined), 60_000);
  const admin = await bench.sign('bench-admin', [BENCH_ADMIN_GROUP]);
  progress('apikeys: raising the global request budget, creating a project, a service account and a key');
  await asAdmin(gateway, admin, 'mutation { setPolicyValue(level: GLOBAL, key: "platform.gateway.requests_per_minute", value: "999999999") { __typename } }');
  await until('the raised budget', () => (gateway.accessModel.policy(null)?.layers.global['platform.gateway.requests_per_minute'] === '999999999' ? true : undefined));
  const slug = `bench-${randomBytes(4).toString('hex')}`;
  const organizationId = (await asAdmin(gateway, admin, 'mutation O($s: String!) { createOrganization(input: { slug: $s, name: "API key bench" }) { id } }', { s: slug })).createOrganization.id;
  const departmentId = (await asAdmin(gateway, admin, 'mutation D($o: ID!) { createDepartment(organizationId: $o, slug: "bench", name: "Bench") { id } }', { o: organizationId }))
    .createDepartment.id;
  const projectId = (await asAdmin(gateway, admin, 'mutation P($d: ID!) { createProject(departmentId: $d, slug: "keys", name: "Keys") { id } }', { d: departmentId }))
    .createProject.id;
  const serviceAccountId = (await asAdmin(gateway, admin, 'mutation A($p: ID!) { createServiceAccount(input: { projectId: $p, name: "bench" }) { id } }', { p: projectId }))
    .createServiceAccount.id;
  const { secret, id } = await createKey(gateway, { admin, serviceAccountId });
  await until('the key at the gateway', () => gateway.accessModel.apiKey(id));
  return { bench, admin, projectId, serviceAccountId, key: secret, keyId: id };
}

async function startSecondGateway(stack: KeyStack, unauthenticatedPrincipal?: Principal): Promise<RunningGateway> {
  const { platform, wiring, logger } = stack.bench;
  const config = parseConfig(gatewayConfigSchema, { ...gatewayEnvironment(wiring, 0, platform.subgraphUrls), API_KEY_FAILURE_LIMIT: JSON.stringify({ limit: 1_000_000, windowSeconds: 60 }) });
  const gateway = await startGateway(config, logger(unauthenticatedPrincipal ? 'gateway-no-auth' : 'gateway-2'), unauthenticatedPrincipal ? { unauthenticatedPrincipal } : {});
  await until('the second gateway to be ready', () => (gateway.accessModel.isFresh() ? true : undefined), 30_000);
  return gateway;
}

async function measureOverhead(stack: KeyStack, options: { durationMs: number; concurrency: number; rounds: number }): Promise<void> {
  const on = stack.bench.platform.gateway;
  const entry = on.accessModel.apiKey(stack.keyId);
  if (!entry) throw new Error('the key is not in the read model');
  progress('apikeys: starting a gateway that serves uncredentialed requests as the same principal');
  const off = await startSecondGateway(stack, apiKeyPrincipal(entry));
  try {
    const variables = { id: stack.projectId };
    const byKey = () => graphql(on, { authorization: `Bearer ${stack.key}` }, PROJECT_READ, variables);
    const bare = () => graphql(off, {}, PROJECT_READ, variables);
    const same = JSON.stringify(await byKey()) === JSON.stringify(await bare());
    const { on: a, off: b } = await measureSideBySide(
      async () => {
        await byKey();
      },
      async () => {
        await bare();
      },
      { name: 'apikeys', ...options },
    );
    process.stdout.write(
      `\nAPI key authentication on vs off: ${PROJECT_READ} by a key holding platform:project:read, ${options.concurrency} concurrent clients, ` +
        `${options.durationMs / 1000} s per side in ${options.rounds} alternating rounds after 2 s warm-up; answers ${same ? 'identical' : 'DIFFER'}\n` +
        `on  = the platform's gateway, \`Authorization: Bearer <key>\`: parse and checksum, read-model lookup, HMAC-SHA256 check, freshness, cached principal, last-use bookkeeping\n` +
        `off = a second gateway in this process with GatewayOptions.unauthenticatedPrincipal: the request carries no credential and is served as the same principal\n` +
        `both: the iam subgraph still enforces @scopes and can(), so "added" is the gateway's share; CPU is this whole process per request\n\n` +
        sideBySideTable(a, b),
    );
  } finally {
    await off.close();
  }
}

/** From the revoke's answer until both gateways' readers hold the key as revoked. */
async function measurePropagation(stack: KeyStack, revokes: number): Promise<void> {
  const first = stack.bench.platform.gateway;
  progress(`apikeys: creating ${revokes} keys and a second gateway instance`);
  const keys: Array<{ secret: string; id: string }> = [];
  for (let i = 0; i < revokes; i++) keys.push(await createKey(first, stack));
  const second = await startSecondGateway(stack);
  try {
    const readers = [first.accessModel, second.accessModel];
    await until('both gateways to know every key', () => (keys.every((key) => readers.every((reader) => reader.apiKey(key.id) !== undefined)) ? true : undefined), 30_000);
    const fromAnswer: number[] = [];
    const fromRequest: number[] = [];
    progress(`apikeys: revoking ${revokes} keys one at a time`);
    for (const [index, key] of keys.entries()) {
      const seen = readers.map(
        (reader) =>
          new Promise<number>((resolve) => {
            const stop = reader.onApiKeyChange((keyId, entry) => {
              if (keyId !== key.id || entry?.status !== 'revoked') return;
              stop();
              resolve(performance.now());
            });
          }),
      );
      const sentAt = performance.now();
      await asAdmin(first, stack.admin, 'mutation V($id: ID!) { revokeApiKey(id: $id) { id } }', { id: key.id });
      const answeredAt = performance.now();
      const arrivals = await Promise.race([Promise.all(seen), sleep(10_000).then(() => undefined)]);
      if (!arrivals) throw new Error(`revoke ${index + 1} did not reach both gateways within 10 s`);
      const last = Math.max(...arrivals);
      fromAnswer.push(Math.max(0, last - answeredAt));
      fromRequest.push(last - sentAt);
    }
    // The key is refused too, not only recorded: one check per gateway after the last revoke.
    const lastKey = keys[keys.length - 1]!;
    for (const gateway of [first, second]) {
      const res = await fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${lastKey.secret}` },
        body: JSON.stringify({ query: PROJECT_READ, variables: { id: stack.projectId } }),
      });
      if (res.status !== 401) throw new Error(`a revoked key got ${res.status} from ${gateway.url}`);
    }
    process.stdout.write(
      `\nRevocation propagation across two gateway instances: ${revokes} revokeApiKey mutations through the first gateway, one at a time; goal: 1 s\n` +
        `from the answer: until both readers applied the revoked entry (0 where a reader had it before the answer arrived)\n\n` +
        propagationTable('revokes', fromAnswer) +
        `\nfrom sending the mutation (the revoke's own round trip included)\n\n` +
        propagationTable('revokes', fromRequest),
    );
  } finally {
    await second.close();
  }
}

async function printColdLoad(count: number): Promise<void> {
  progress(`apikeys: cold load of ${count} keys`);
  const nc = await connect({ servers: TEST_NATS_URL, name: 'aif-apikeys-bench' });
  try {
    const measured = await measureColdLoad(nc, count, 'apiKeys');
    const gc = typeof (globalThis as { gc?: unknown }).gc === 'function';
    process.stdout.write(
      `\nCold load of the key read model: ${measured.count} API key entries (three scopes, an expiry, a hash each), into a fresh gateway reader\n\n` +
        '| keys | load ms | heap MB |\n|---|---|---|\n' +
        `| ${measured.count} | ${measured.loadMs} | ${gc ? fmt(measured.heapDeltaBytes / 1024 / 1024, 1) : `${fmt(measured.heapDeltaBytes / 1024 / 1024, 1)} (approximate: run node with --expose-gc)`} |\n`,
    );
  } finally {
    await nc.close();
  }
}
