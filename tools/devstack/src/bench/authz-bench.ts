import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { measureColdLoad, type AccessModelReader } from '@aifactory/access-model';
import { buildCatalogSnapshot, can, Catalog, type PrincipalEntry } from '@aifactory/authz';
import { parseConfig } from '@aifactory/config';
import { loadRegistryData } from '@aifactory/contracts';
import { gatewayConfigSchema } from '@aifactory/gateway/config';
import { startGateway, type RunningGateway } from '@aifactory/gateway/server';
import type { Logger } from '@aifactory/logging';
import type { Principal } from '@aifactory/service-auth';
import { TEST_NATS_URL } from '@aifactory/testing';
import type { RunningPlatform } from '../platform.js';
import { gatewayEnvironment, type PlatformWiring } from '../wiring.js';
import { addLoad, emptyLoad, percentile, runLoad, type LoadResult } from './load.js';
import { BENCH_ADMIN_GROUP, BENCH_ISSUER, startBenchPlatform } from './bench-platform.js';
import { progress, Teardown } from './teardown.js';

const USAGE =
  'usage: npm run bench -- authz [--duration 8] [--concurrency 8] [--rounds 4] [--changes 20] [--memberships 100000] [--only overhead|propagation|coldload]\n';
const MEMBER = 'bench-member';
/** A read the iam subgraph guards with @scopes and then checks per organization with can(). */
const GUARDED_READ = '{ organizations(first: 5) { edges { node { id name } } } }';

function positiveInt(value: string | undefined): number | undefined {
  const parsed = Number(value);
  return Number.isInteger(parsed) && parsed > 0 ? parsed : undefined;
}

const fmt = (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : '-');

/**
 * `npm run bench -- authz` (issue 14, Benchmark): the same guarded read
 * through a gateway that resolves the principal from IAM's read model and
 * through one handed a fixed principal; how long a membership change takes
 * to reach two gateway instances; the cost of one `can()` decision; and the
 * cold load of a read model of many memberships. The platform parts start
 * the whole platform in this process on a private database, stream prefix
 * and Redis prefix, all removed at the end.
 */
export async function runAuthzBench(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      duration: { type: 'string', default: '8' },
      concurrency: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '4' },
      changes: { type: 'string', default: '20' },
      memberships: { type: 'string', default: '100000' },
      only: { type: 'string' },
    },
  });
  const durationMs = (positiveInt(values.duration) ?? 0) * 1000;
  const concurrency = positiveInt(values.concurrency);
  const rounds = positiveInt(values.rounds);
  const changes = positiveInt(values.changes);
  const memberships = positiveInt(values.memberships);
  const only = values.only;
  if (!durationMs || !concurrency || !rounds || !changes || !memberships || (only !== undefined && !['overhead', 'propagation', 'coldload'].includes(only))) {
    process.stderr.write(USAGE);
    return 2;
  }
  const workDir = await mkdtemp(path.join(tmpdir(), 'aif-authz-bench-'));
  const teardown = new Teardown();
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`bench: ${signal}, removing what this run created\n`);
    void teardown.run().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let keepWorkDir = false;
  try {
    printDecisionCost();
    if (only === undefined || only === 'overhead' || only === 'propagation') {
      const stack = await startAuthzStack(workDir, teardown);
      if (only !== 'propagation') await measureOverhead(stack, { durationMs, concurrency, rounds });
      if (only !== 'overhead') await measurePropagation(stack, changes);
      await teardown.run();
    }
    if (only === undefined || only === 'coldload') await printColdLoad(memberships);
    return 0;
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

/** One `can()` against the registry's catalogue: the decision the seed budgets at p99 < 20 ms. */
function printDecisionCost(): void {
  const registry = loadRegistryData();
  const catalog = new Catalog(buildCatalogSnapshot({ scopes: registry.scopes, roles: registry.roles, registryVersions: { scopes: 1 }, publishedAt: new Date().toISOString() }));
  const organizations = Array.from({ length: 20 }, () => randomUUID());
  const principal: Principal = {
    type: 'user',
    subject: randomUUID(),
    platformRoles: [],
    grants: organizations.map((id) => ({ level: 'organization' as const, id, role: 'viewer', org: id, dept: null })),
  };
  const last = organizations[organizations.length - 1]!;
  const timings: number[] = [];
  const elsewhere = { organizationId: randomUUID() };
  const inLast = { organizationId: last };
  for (let i = 0; i < 200_000; i++) {
    const resource = i % 2 === 0 ? inLast : elsewhere;
    const t0 = performance.now();
    can(catalog, principal, 'platform:organization:read', resource);
    timings.push(performance.now() - t0);
  }
  timings.sort((a, b) => a - b);
  process.stdout.write(
    `\nAuthorization decision: can() for a principal with 20 grants, 200,000 calls (half allowed on the last grant, half denied)\n\n` +
      `| p50 µs | p99 µs | max µs |\n|---|---|---|\n| ${fmt(percentile(timings, 50) * 1000)} | ${fmt(percentile(timings, 99) * 1000)} | ${fmt(timings[timings.length - 1]! * 1000)} |\n`,
  );
}

interface AuthzStack {
  platform: RunningPlatform;
  wiring: PlatformWiring;
  logger: (service: string) => Logger;
  adminAssertion: string;
  memberAssertion: string;
  organizationId: string;
  memberUserId: string;
  /** The member's viewer membership the set-up granted. */
  membershipId: string;
}

async function graphql(gateway: RunningGateway, assertion: string, query: string, variables?: unknown): Promise<any> {
  const res = await fetch(`${gateway.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-pomerium-jwt-assertion': assertion, 'idempotency-key': randomUUID() },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: any; errors?: Array<{ message: string; extensions?: { code?: string } }> };
  if (res.status !== 200 || body.errors) throw new Error(`gateway answered ${res.status}: ${JSON.stringify(body.errors ?? body)}`);
  return body.data;
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(5);
  }
}

/** The platform, an organization, a member holding `viewer` on it, and a global request budget no run reaches. */
async function startAuthzStack(workDir: string, teardown: Teardown): Promise<AuthzStack> {
  const { platform, wiring, logger, sign } = await startBenchPlatform({ name: 'authz', workDir, teardown, poolSize: 4 });
  await until('the access read model', () => (platform.gateway.accessModel.isFresh() ? true : undefined), 60_000);

  const adminAssertion = await sign('bench-admin', [BENCH_ADMIN_GROUP]);
  const memberAssertion = await sign(MEMBER, []);
  const { gateway } = platform;
  progress('authz: raising the global request budget, creating an organization and a member');
  // The per-principal limit is a policy key now: set it past anything a run sends.
  await graphql(gateway, adminAssertion, 'mutation { setPolicyValue(level: GLOBAL, key: "platform.gateway.requests_per_minute", value: "999999999") { __typename } }');
  await until('the raised budget', () => (gateway.accessModel.policy(null)?.layers.global['platform.gateway.requests_per_minute'] === '999999999' ? true : undefined));
  const created = await graphql(gateway, adminAssertion, 'mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { id } }', {
    input: { slug: `bench-${randomBytes(4).toString('hex')}`, name: 'Authorization bench' },
  });
  const organizationId = String(created.createOrganization.id);
  const me = await graphql(gateway, memberAssertion, '{ me { id } }');
  const memberUserId = String(me.me.id);
  const granted = await graphql(gateway, adminAssertion, 'mutation($u: ID!, $o: ID!) { grantRole(userId: $u, level: ORGANIZATION, nodeId: $o, role: "viewer") { id } }', {
    u: memberUserId,
    o: organizationId,
  });
  await until('the grant at the gateway', () => (holds(gateway.accessModel, organizationId) ? true : undefined));
  return { platform, wiring, logger, adminAssertion, memberAssertion, organizationId, memberUserId, membershipId: String(granted.grantRole.id) };
}

function memberEntry(reader: AccessModelReader): PrincipalEntry | undefined {
  return reader.principal(BENCH_ISSUER, MEMBER);
}

function holds(reader: AccessModelReader, organizationId: string): boolean {
  return memberEntry(reader)?.grants.some((grant) => grant.id === organizationId) === true;
}

async function startSecondGateway(stack: AuthzStack, fixedPrincipal?: Principal): Promise<RunningGateway> {
  const config = parseConfig(gatewayConfigSchema, gatewayEnvironment(stack.wiring, 0, stack.platform.subgraphUrls));
  const gateway = await startGateway(config, stack.logger(fixedPrincipal ? 'gateway-fixed-principal' : 'gateway-2'), fixedPrincipal ? { fixedPrincipal } : {});
  await until('the second gateway to be ready', () => (fixedPrincipal || gateway.accessModel.isFresh() ? true : undefined), 30_000);
  return gateway;
}

function cpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
}

async function measureOverhead(stack: AuthzStack, options: { durationMs: number; concurrency: number; rounds: number }): Promise<void> {
  const on = stack.platform.gateway;
  const entry = memberEntry(on.accessModel);
  if (!entry) throw new Error('the member is not in the read model');
  // What the "on" gateway resolves for the member, fixed: the subgraph sees the same principal either way.
  const fixed: Principal = {
    type: 'user',
    subject: entry.userId,
    platformRoles: [...entry.platformRoles],
    grants: entry.grants.map((grant) => ({ level: grant.level, id: grant.id, role: grant.role, org: grant.organizationId, dept: grant.departmentId })),
    ...(entry.email !== null ? { email: entry.email } : {}),
    ...(entry.name !== null ? { name: entry.name } : {}),
    ...(on.accessModel.catalog() ? { registryVersion: on.accessModel.catalog()!.version } : {}),
  };
  progress('authz: starting a gateway with a fixed principal');
  const off = await startSecondGateway(stack, fixed);
  try {
    const [answerOn, answerOff] = [await graphql(on, stack.memberAssertion, GUARDED_READ), await graphql(off, stack.memberAssertion, GUARDED_READ)];
    const same = JSON.stringify(answerOn) === JSON.stringify(answerOff);
    const request = (gateway: RunningGateway) => async () => {
      await graphql(gateway, stack.memberAssertion, GUARDED_READ);
    };
    progress('authz: warming up both gateways');
    await runLoad(request(on), options.concurrency, 2_000);
    await runLoad(request(off), options.concurrency, 2_000);
    const totals = { on: emptyLoad(), off: emptyLoad() };
    const cpu = { on: 0, off: 0 };
    // Alternating rounds, so drift on a shared machine hits both sides alike.
    for (let round = 0; round < options.rounds; round++) {
      progress(`authz: round ${round + 1} of ${options.rounds}`);
      for (const side of ['on', 'off'] as const) {
        const before = cpuMs();
        addLoad(totals[side], await runLoad(request(side === 'on' ? on : off), options.concurrency, options.durationMs / options.rounds));
        cpu[side] += cpuMs() - before;
      }
    }
    const row = (load: LoadResult, cpuTotal: number) => {
      const sorted = [...load.latenciesMs].sort((a, b) => a - b);
      return { requests: load.requests, errors: load.errors, rps: load.requests / load.seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99), cpu: cpuTotal / Math.max(1, load.requests) };
    };
    const a = row(totals.on, cpu.on);
    const b = row(totals.off, cpu.off);
    process.stdout.write(
      `\nGuard and grant resolution on vs off: ${GUARDED_READ} as a viewer of one organization, ${options.concurrency} concurrent clients, ` +
        `${options.durationMs / 1000} s per side in ${options.rounds} alternating rounds after 2 s warm-up; answers ${same ? 'identical' : 'DIFFER'}\n` +
        `on  = the platform's gateway: assertion -> read-model principal lookup, freshness check, cached principal build\n` +
        `off = a second gateway in this process with GatewayOptions.fixedPrincipal (the same principal, no lookup, no freshness check)\n` +
        `both: the iam subgraph still enforces @scopes and can() (subgraph-kit has no switch to turn that off), so "added" is the gateway's share;\n` +
        `CPU is this whole process (gateways and subgraphs run in it) per request\n\n` +
        '| side | requests | errors | req/s | p50 ms | p99 ms | CPU ms/req |\n|---|---|---|---|---|---|---|\n' +
        `| on | ${a.requests} | ${a.errors} | ${fmt(a.rps, 0)} | ${fmt(a.p50)} | ${fmt(a.p99)} | ${fmt(a.cpu, 3)} |\n` +
        `| off | ${b.requests} | ${b.errors} | ${fmt(b.rps, 0)} | ${fmt(b.p50)} | ${fmt(b.p99)} | ${fmt(b.cpu, 3)} |\n` +
        `| added | | | | ${fmt(a.p50 - b.p50, 3)} | ${fmt(a.p99 - b.p99, 3)} | ${fmt(a.cpu - b.cpu, 3)} |\n`,
    );
  } finally {
    await off.close();
  }
}

/** From the mutation's answer until both gateways' readers hold the member's new entry. */
async function measurePropagation(stack: AuthzStack, changes: number): Promise<void> {
  const first = stack.platform.gateway;
  progress('authz: starting a second gateway instance');
  const second = await startSecondGateway(stack);
  try {
    const readers = [first.accessModel, second.accessModel];
    await until('the second gateway to know the member', () => (holds(second.accessModel, stack.organizationId) ? true : undefined));
    const timings: number[] = [];
    // The set-up's membership is in place: changes alternate remove, grant, remove, ...
    let membershipId: string | undefined = stack.membershipId;
    for (let change = 0; change < changes; change++) {
      const granting = membershipId === undefined;
      // Timestamps from the listeners, not from polling: each reader says when it applied the entry.
      const seen = readers.map(
        (reader) =>
          new Promise<number>((resolve) => {
            const stop = reader.onPrincipalChange((entry) => {
              if (entry.subject !== MEMBER || entry.issuer !== BENCH_ISSUER) return;
              if (entry.grants.some((grant) => grant.id === stack.organizationId) !== granting) return;
              stop();
              resolve(performance.now());
            });
          }),
      );
      let answeredAt: number;
      if (granting) {
        const granted = await graphql(first, stack.adminAssertion, 'mutation($u: ID!, $o: ID!) { grantRole(userId: $u, level: ORGANIZATION, nodeId: $o, role: "viewer") { id } }', {
          u: stack.memberUserId,
          o: stack.organizationId,
        });
        answeredAt = performance.now();
        membershipId = String(granted.grantRole.id);
      } else {
        await graphql(first, stack.adminAssertion, 'mutation($m: ID!) { removeMembership(membershipId: $m) { id } }', { m: membershipId });
        answeredAt = performance.now();
        membershipId = undefined;
      }
      const arrivals = await Promise.race([Promise.all(seen), sleep(10_000).then(() => undefined)]);
      if (!arrivals) throw new Error(`change ${change + 1} did not reach both gateways within 10 s`);
      timings.push(Math.max(0, Math.max(...arrivals) - answeredAt));
    }
    const sorted = [...timings].sort((a, b) => a - b);
    process.stdout.write(
      `\nMembership-change propagation across two gateway instances: ${changes} alternating grant/remove mutations through the first gateway, ` +
        `time from the mutation's answer until both readers applied the new entry (0 where a reader had it before the answer arrived; goal: 1 s)\n\n` +
        '| changes | p50 ms | p99 ms | max ms | within 1 s |\n|---|---|---|---|---|\n' +
        `| ${timings.length} | ${fmt(percentile(sorted, 50), 1)} | ${fmt(percentile(sorted, 99), 1)} | ${fmt(sorted[sorted.length - 1] ?? Number.NaN, 1)} | ${timings.filter((ms) => ms <= 1_000).length}/${timings.length} |\n`,
    );
  } finally {
    await second.close();
  }
}

async function printColdLoad(count: number): Promise<void> {
  progress(`authz: cold load of ${count} principals`);
  const nc = await connect({ servers: TEST_NATS_URL, name: 'aif-authz-bench' });
  try {
    const measured = await measureColdLoad(nc, count);
    const gc = typeof (globalThis as { gc?: unknown }).gc === 'function';
    process.stdout.write(
      `\nCold load of the access read model: ${measured.count} principals (one organization viewer grant and one project membership each)\n\n` +
        '| principals | load ms | heap MB |\n|---|---|---|\n' +
        `| ${measured.count} | ${measured.loadMs} | ${gc ? fmt(measured.heapDeltaBytes / 1024 / 1024, 1) : `${fmt(measured.heapDeltaBytes / 1024 / 1024, 1)} (approximate: run node with --expose-gc)`} |\n`,
    );
  } finally {
    await nc.close();
  }
}
