import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
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
import { percentile } from './load.js';
import { inBenchWorkspace, parseSideBySideArgs } from './bench-run.js';
import { fmt, graphql, measureSideBySide, propagationTable, sideBySideTable, until } from './side-by-side.js';
import { BENCH_ADMIN_GROUP, BENCH_ISSUER, startBenchPlatform } from './bench-platform.js';
import { progress, type Teardown } from './teardown.js';

const USAGE =
  'usage: npm run bench -- authz [--duration 8] [--concurrency 8] [--rounds 4] [--changes 20] [--memberships 100000] [--only overhead|propagation|coldload]\n';
const MEMBER = 'bench-member';
/** A read the iam subgraph guards with @scopes and then checks per organization with can(). */
const GUARDED_READ = '{ organizations(first: 5) { edges { node { id name } } } }';


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
  const parsed = parseSideBySideArgs(args, { changes: '20', memberships: '100000' }, USAGE);
  if (parsed === undefined) return 2;
  const { durationMs, concurrency, rounds, counts, only } = parsed;
  return inBenchWorkspace('authz', async (workDir, teardown) => {
    printDecisionCost();
    if (only === undefined || only === 'overhead' || only === 'propagation') {
      const stack = await startAuthzStack(workDir, teardown);
      if (only !== 'propagation') await measureOverhead(stack, { durationMs, concurrency, rounds });
      if (only !== 'overhead') await measurePropagation(stack, counts.changes!);
      await teardown.run();
    }
    if (only === undefined || only === 'coldload') await printColdLoad(counts.memberships!);
  });
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

/** A call as the person whose assertion this is, with a fresh idempotency key so mutations are never replayed. */
function asPerson(gateway: RunningGateway, assertion: string, query: string, variables?: unknown): Promise<any> {
  return graphql(gateway, { 'x-pomerium-jwt-assertion': assertion, 'idempotency-key': randomUUID() }, query, variables);
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
  await asPerson(gateway, adminAssertion, 'mutation { setPolicyValue(level: GLOBAL, key: "platform.gateway.requests_per_minute", value: "999999999") { __typename } }');
  await until('the raised budget', () => (gateway.accessModel.policy(null)?.layers.global['platform.gateway.requests_per_minute'] === '999999999' ? true : undefined));
  const created = await asPerson(gateway, adminAssertion, 'mutation($input: CreateOrganizationInput!) { createOrganization(input: $input) { id } }', {
    input: { slug: `bench-${randomBytes(4).toString('hex')}`, name: 'Authorization bench' },
  });
  const organizationId = String(created.createOrganization.id);
  const me = await asPerson(gateway, memberAssertion, '{ me { id } }');
  const memberUserId = String(me.me.id);
  const granted = await asPerson(gateway, adminAssertion, 'mutation($u: ID!, $o: ID!) { grantRole(userId: $u, level: ORGANIZATION, nodeId: $o, role: "viewer") { id } }', {
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
    const [answerOn, answerOff] = [await asPerson(on, stack.memberAssertion, GUARDED_READ), await asPerson(off, stack.memberAssertion, GUARDED_READ)];
    const same = JSON.stringify(answerOn) === JSON.stringify(answerOff);
    const request = (gateway: RunningGateway) => async () => {
      await asPerson(gateway, stack.memberAssertion, GUARDED_READ);
    };
    const { on: a, off: b } = await measureSideBySide(request(on), request(off), { name: 'authz', ...options });
    process.stdout.write(
      `\nGuard and grant resolution on vs off: ${GUARDED_READ} as a viewer of one organization, ${options.concurrency} concurrent clients, ` +
        `${options.durationMs / 1000} s per side in ${options.rounds} alternating rounds after 2 s warm-up; answers ${same ? 'identical' : 'DIFFER'}\n` +
        `on  = the platform's gateway: assertion -> read-model principal lookup, freshness check, cached principal build\n` +
        `off = a second gateway in this process with GatewayOptions.fixedPrincipal (the same principal, no lookup, no freshness check)\n` +
        `both: the iam subgraph still enforces @scopes and can() (subgraph-kit has no switch to turn that off), so "added" is the gateway's share;\n` +
        `CPU is this whole process (gateways and subgraphs run in it) per request\n\n` +
        sideBySideTable(a, b),
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
        const granted = await asPerson(first, stack.adminAssertion, 'mutation($u: ID!, $o: ID!) { grantRole(userId: $u, level: ORGANIZATION, nodeId: $o, role: "viewer") { id } }', {
          u: stack.memberUserId,
          o: stack.organizationId,
        });
        answeredAt = performance.now();
        membershipId = String(granted.grantRole.id);
      } else {
        await asPerson(first, stack.adminAssertion, 'mutation($m: ID!) { removeMembership(membershipId: $m) { id } }', { m: membershipId });
        answeredAt = performance.now();
        membershipId = undefined;
      }
      const arrivals = await Promise.race([Promise.all(seen), sleep(10_000).then(() => undefined)]);
      if (!arrivals) throw new Error(`change ${change + 1} did not reach both gateways within 10 s`);
      timings.push(Math.max(0, Math.max(...arrivals) - answeredAt));
    }
    process.stdout.write(
      `\nMembership-change propagation across two gateway instances: ${changes} alternating grant/remove mutations through the first gateway, ` +
        `time from the mutation's answer until both readers applied the new entry (0 where a reader had it before the answer arrived; goal: 1 s)\n\n` +
        propagationTable('changes', timings),
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
