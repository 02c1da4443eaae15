/**
 * Issue 17, the usage an organization can read: raw usage events (accepted
 * and rejected), rated lines with their remainder-chain steps, refusals and
 * conflicts, reconciliation windows and rollups, each a keyset list with
 * filters behind platform:billing:read; the same over GraphQL; and the
 * rated lines as a streamed CSV export.
 */
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { AccessModelReader } from '@aifactory/access-model';
import { applyScopesDirective, type Access } from '@aifactory/authz';
import type { SubgraphHttpRoute } from '@aifactory/subgraph-kit';
import type { Principal } from '@aifactory/service-auth';
import { graphql, parse, type GraphQLSchema } from 'graphql';
import { HierarchyStore } from '../src/data/hierarchy.js';
import { UsageCompactionStore } from '../src/data/usage-compaction-store.js';
import { UsageReadsStore } from '../src/data/usage-reads-store.js';
import { UsageReconciliationStore } from '../src/data/usage-reconciliation-store.js';
import { usageExportRoute } from '../src/http/usage-export-route.js';
import { EXACT_UNITS_PER_MINOR } from '../src/domain/rating-amounts.js';
import { UsageCompaction } from '../src/domain/usage-compaction.js';
import { UsageDriftStatus } from '../src/domain/usage-drift-status.js';
import { EXPORT_PAGE_SIZE, UsageReads } from '../src/domain/usage-reads.js';
import { UsageReconciliation } from '../src/domain/usage-reconciliation.js';
import { resolvers } from '../src/resolvers/index.js';
import { typeDefsSource } from '../src/server.js';
import { billingAccess, orgAdmin, platformAdmin, policySource, projectMember } from './billing-access.js';
import { codeOf, startBillingFixture, type BillingFixture } from './billing-fixture.js';
import { knownProject, knownScope, type KnownScope } from './usage-fixture.js';
import {
  hoursAfter,
  insertChainStep,
  insertConflict,
  insertLines,
  insertRatedEvent,
  insertRollup,
  insertSummary,
  insertUsageEvent,
  type UsageScopeIds,
} from './usage-rows.js';

/**
 * billing's SDL and resolvers as the subgraph serves them. Until the usage
 * SDL and resolvers are merged into schema.graphql and resolvers/index.ts,
 * they are added here; after, this is typeDefsSource and resolvers alone.
 */

let fx: BillingFixture;
let reads: UsageReads;
let compaction: UsageCompaction;
const authz = billingAccess();
const access = (principal: Principal) => authz.caller(principal).access;

/** One organization with two known projects, and a second organization. */
let org: KnownScope;
let otherProject: UsageScopeIds;
let stranger: KnownScope;
const ids = { accepted: [] as string[], rejected: '', conflict: '' };
const base = new Date('2025-05-06T10:00:00.000Z');

beforeAll(async () => {
  fx = await startBillingFixture();
  const pool = fx.database.pool;
  reads = new UsageReads(new UsageReadsStore(pool), new HierarchyStore(), pool);
  const store = new UsageReconciliationStore(pool);
  const reconciliation = new UsageReconciliation(store, new UsageDriftStatus(pool, store), { graceMs: 300_000 });
  compaction = new UsageCompaction(pool, new UsageCompactionStore(), reconciliation, { subjectPrefix: '' });

  org = await knownScope(fx.admin);
  otherProject = { ...org, ...(await knownProject(fx.admin, org)) };
  stranger = await knownScope(fx.admin);

  // Five accepted events in the order they happened: tokenfactory on both projects, one gpuaas opening, one unit apart.
  ids.accepted.push(await insertRatedEvent(fx.admin, org, { occurredAt: hoursAfter(base, 0.1), quantity: 10n }));
  ids.accepted.push(await insertRatedEvent(fx.admin, otherProject, { occurredAt: hoursAfter(base, 0.2), quantity: 20n }));
  ids.accepted.push(await insertUsageEvent(fx.admin, org, { occurredAt: hoursAfter(base, 0.3), product: 'gpuaas', unit: 'gpu_hour', kind: 'opened', basePerUnit: 3600 }));
  ids.accepted.push(await insertRatedEvent(fx.admin, org, { occurredAt: hoursAfter(base, 0.4), unit: 'token_input', quantity: 40n }));
  ids.accepted.push(await insertRatedEvent(fx.admin, org, { occurredAt: hoursAfter(base, 1.5), quantity: 50n }));
  ids.rejected = await insertUsageEvent(fx.admin, org, { occurredAt: hoursAfter(base, 0.5), rejectionReason: 'unknown_unit', receivedAt: hoursAfter(base, 2) });
  ids.conflict = ids.accepted[0]!;
  await insertConflict(fx.admin, org, ids.conflict, hoursAfter(base, 3));
  await insertRatedEvent(fx.admin, stranger, { occurredAt: hoursAfter(base, 0.1) });

  // Lines in two steps of one chain: the step's exact total and what it posted.
  const first = await insertChainStep(fx.admin, org, { period: '2025-05-01', exactUnits: EXACT_UNITS_PER_MINOR / 2n });
  const second = await insertChainStep(fx.admin, org, { period: '2025-05-01', exactUnits: EXACT_UNITS_PER_MINOR * 3n });
  await insertLines(fx.admin, org, { postingId: first, occurredAt: hoursAfter(base, 0.1), exactUnits: EXACT_UNITS_PER_MINOR / 2n });
  await insertLines(fx.admin, org, { postingId: second, occurredAt: hoursAfter(base, 0.4), product: 'gpuaas', unit: 'gpu_hour', kind: 'window', exactUnits: (EXACT_UNITS_PER_MINOR * 5n) / 2n });
  await insertLines(fx.admin, otherProject, { postingId: await insertChainStep(fx.admin, otherProject), occurredAt: hoursAfter(base, 0.2), resourceId: '=HYPERLINK("x")' });

  // Rollups: two hours of one day on the first project (one with an API key), one hour of the next day on the other.
  await insertRollup(fx.admin, org, { hour: base, lines: 2n, quantity: 30n, exactUnits: EXACT_UNITS_PER_MINOR });
  await insertRollup(fx.admin, org, { hour: hoursAfter(base, 1), apiKeyId: 'key-1', lines: 1n, quantity: 50n, exactUnits: EXACT_UNITS_PER_MINOR / 4n });
  await insertRollup(fx.admin, otherProject, { hour: hoursAfter(base, 24), lines: 4n, quantity: 8n, exactUnits: EXACT_UNITS_PER_MINOR * 2n });

  // A drifting window (the product counted one more) and a clean one.
  await insertSummary(fx.admin, { organizationId: org.organizationId, windowStart: base, windowEnd: hoursAfter(base, 1), eventCount: 3, quantity: 60n });
  await reconciliation.reconcileSpan(base, hoursAfter(base, 2), { type: 'system', id: 'usage-reads-test' });
}, 60_000);

afterAll(async () => {
  await fx?.close();
});

/** Every node of a list, page after page of `first`. */
async function allPages<T>(page: (after: string | null) => Promise<{ edges: Array<{ node: T; cursor: string }>; pageInfo: { hasNextPage: boolean; endCursor: string | null } }>) {
  const nodes: T[] = [];
  let after: string | null = null;
  let pages = 0;
  for (;;) {
    const connection = await page(after);
    nodes.push(...connection.edges.map((edge) => edge.node));
    pages += 1;
    if (!connection.pageInfo.hasNextPage) return { nodes, pages };
    after = connection.pageInfo.endCursor;
  }
}

describe('usage events', () => {
  it('lists accepted and rejected usage in the order it happened, page by page', async () => {
    const { nodes, pages } = await allPages((after) => reads.usage(access(orgAdmin(org.organizationId)), org.organizationId, null, { first: 2, after }));

    expect(pages).toBe(3);
    expect(nodes.map((event) => event.eventId)).toEqual([ids.accepted[0], ids.accepted[1], ids.accepted[2], ids.accepted[3], ids.rejected, ids.accepted[4]]);
    expect(nodes[0]).toMatchObject({ status: 'accepted', quantity: 10n, unitPrice: '0.500000000000', ratedAt: expect.any(Date) });
    expect(nodes[2]).toMatchObject({ kind: 'opened', ratedAt: null });
    expect(nodes[4]).toMatchObject({ status: 'rejected', rejectionReason: 'unknown_unit' });
  });

  it('narrows by product, project, unit, status and time', async () => {
    const list = async (filter: Parameters<UsageReads['usage']>[2]) =>
      (await reads.usage(access(orgAdmin(org.organizationId)), org.organizationId, filter, {})).edges.map((edge) => edge.node.eventId);

    expect(await list({ product: 'gpuaas' })).toEqual([ids.accepted[2]]);
    expect(await list({ projectId: otherProject.projectId })).toEqual([ids.accepted[1]]);
    expect(await list({ unit: 'token_input' })).toEqual([ids.accepted[3]]);
    expect(await list({ status: 'rejected' })).toEqual([ids.rejected]);
    expect(await list({ from: hoursAfter(base, 0.2), to: hoursAfter(base, 0.4) })).toEqual([ids.accepted[1], ids.accepted[2]]);
  });

  it("is read with platform:billing:read on the organization, or on the project for that project's usage", async () => {
    const member = access(projectMember(org.organizationId, otherProject.departmentId, otherProject.projectId));

    const own = await reads.usage(member, org.organizationId, { projectId: otherProject.projectId }, {});

    expect(own.edges.map((edge) => edge.node.eventId)).toEqual([ids.accepted[1]]);
    expect(await codeOf(reads.usage(member, org.organizationId, null, {}))).toBe('AUTH_FORBIDDEN');
    expect(await codeOf(reads.usage(access(orgAdmin(stranger.organizationId)), org.organizationId, null, {}))).toBe('AUTH_FORBIDDEN');
    expect(await codeOf(reads.ratedUsage(access(orgAdmin(stranger.organizationId)), org.organizationId, null, {}))).toBe('AUTH_FORBIDDEN');
  });

  it('refuses a cursor of another list, a backwards range and an unknown product', async () => {
    const admin = access(orgAdmin(org.organizationId));
    const lineCursor = (await reads.ratedUsage(admin, org.organizationId, null, { first: 1 })).pageInfo.endCursor;

    expect(await codeOf(reads.usage(admin, org.organizationId, null, { after: lineCursor }))).toBe('BAD_REQUEST_INVALID_INPUT');
    expect(await codeOf(reads.usage(admin, org.organizationId, null, { after: 'not-a-cursor' }))).toBe('BAD_REQUEST_INVALID_INPUT');
    expect(await codeOf(reads.usage(admin, org.organizationId, { from: base, to: base }, {}))).toBe('BAD_REQUEST_INVALID_INPUT');
    expect(await codeOf(reads.usage(admin, org.organizationId, { product: 'sharepoint' as 'gpuaas' }, {}))).toBe('BAD_REQUEST_INVALID_INPUT');
  });
});

describe('rated usage, refusals and reconciliation', () => {
  it('lists rated lines in the order they were rated, each with its remainder-chain step', async () => {
    const { nodes } = await allPages((after) => reads.ratedUsage(access(orgAdmin(org.organizationId)), org.organizationId, null, { first: 1, after }));
    const gpu = await reads.ratedUsage(access(orgAdmin(org.organizationId)), org.organizationId, { product: 'gpuaas' }, {});

    expect(nodes.map((line) => [line.projectId, line.product, line.exactUnits])).toEqual([
      [org.projectId, 'tokenfactory', EXACT_UNITS_PER_MINOR / 2n],
      [org.projectId, 'gpuaas', (EXACT_UNITS_PER_MINOR * 5n) / 2n],
      [otherProject.projectId, 'tokenfactory', EXACT_UNITS_PER_MINOR / 2n],
    ]);
    expect(gpu.edges.map((edge) => edge.node.posting)).toEqual([
      expect.objectContaining({ step: 2, period: '2025-05-01', exactUnits: EXACT_UNITS_PER_MINOR * 3n, posted: 3n, delta: 0n, ledgerPostingId: null }),
    ]);
  });

  it('lists rejected usage and reused ids together in the order they arrived, with their reasons', async () => {
    const admin = access(orgAdmin(org.organizationId));
    const { nodes } = await allPages((after) => reads.rejectedUsage(admin, org.organizationId, null, { first: 1, after }));
    const conflicts = await reads.rejectedUsage(admin, org.organizationId, { reason: 'conflict' }, {});

    expect(nodes.map((rejected) => [rejected.source, rejected.eventId, rejected.reason])).toEqual([
      ['rejected', ids.rejected, 'unknown_unit'],
      ['conflict', ids.conflict, 'conflict'],
    ]);
    expect(conflicts.edges.map((edge) => [edge.node.product, edge.node.eventType])).toEqual([['tokenfactory', 'tokenfactory.usage.recorded']]);
  });

  it('lists reconciliation windows, or only those that drift', async () => {
    const admin = access(orgAdmin(org.organizationId));
    const all = await reads.reconciliation(admin, org.organizationId, { from: base, to: hoursAfter(base, 2) });
    const drifting = await reads.reconciliation(admin, org.organizationId, { driftOnly: true, first: 1 });

    expect(all.edges.map((edge) => [edge.node.product, edge.node.unitId, edge.node.windowStart.toISOString(), edge.node.drift])).toEqual([
      ['gpuaas', 'gpu_hour', base.toISOString(), true],
      ['tokenfactory', 'token_input', base.toISOString(), false],
      ['tokenfactory', 'token_output', base.toISOString(), true],
      ['tokenfactory', 'token_output', hoursAfter(base, 1).toISOString(), false],
    ]);
    expect(drifting.edges.map((edge) => edge.node.driftReasons)).toEqual([['unrated']]);
    const next = await reads.reconciliation(admin, org.organizationId, { driftOnly: true, first: 1, after: drifting.pageInfo.endCursor });
    expect(next.edges.map((edge) => edge.node.driftReasons)).toEqual([['reported_ne_ingested']]);
    expect(next.pageInfo.hasNextPage).toBe(false);
  });
});

describe('usage rollups', () => {
  it('sums rollups per bucket and dimension, always per currency, page by page', async () => {
    const admin = access(orgAdmin(org.organizationId));
    const { nodes } = await allPages((after) =>
      reads.rollups(admin, org.organizationId, { groupBy: ['project', 'api_key'], granularity: 'day', first: 1, after }),
    );
    const total = await reads.rollups(admin, org.organizationId, {});

    const byDay = nodes.map((r) => [r.bucket?.toISOString(), r.projectId, r.apiKeyId, r.currency, r.lines, r.quantity, r.exactUnits]);
    expect(byDay).toEqual(
      [
        ['2025-05-06T00:00:00.000Z', org.projectId, '', 'USD', 2n, 30n, EXACT_UNITS_PER_MINOR],
        ['2025-05-06T00:00:00.000Z', org.projectId, 'key-1', 'USD', 1n, 50n, EXACT_UNITS_PER_MINOR / 4n],
        ['2025-05-07T00:00:00.000Z', otherProject.projectId, '', 'USD', 4n, 8n, EXACT_UNITS_PER_MINOR * 2n],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0])) || String(a[1]).localeCompare(String(b[1])) || String(a[2]).localeCompare(String(b[2]))),
    );
    expect(total.edges.map((edge) => [edge.node.bucket, edge.node.projectId, edge.node.currency, edge.node.lines, edge.node.exactUnits])).toEqual([
      [null, undefined, 'USD', 7n, (EXACT_UNITS_PER_MINOR * 13n) / 4n],
    ]);
  });

  it("refuses a cursor of another grouping, and narrows to a project's rollups for its members", async () => {
    const admin = access(orgAdmin(org.organizationId));
    const byProject = await reads.rollups(admin, org.organizationId, { groupBy: ['project'], first: 1 });
    const member = access(projectMember(org.organizationId, otherProject.departmentId, otherProject.projectId));

    const own = await reads.rollups(member, org.organizationId, { filter: { projectId: otherProject.projectId } });

    expect(await codeOf(reads.rollups(admin, org.organizationId, { groupBy: ['unit_version'], after: byProject.pageInfo.endCursor }))).toBe(
      'BAD_REQUEST_INVALID_INPUT',
    );
    expect(own.edges.map((edge) => edge.node.lines)).toEqual([4n]);
  });
});

describe('usage over GraphQL', () => {
  let schema: GraphQLSchema;

  beforeAll(() => {
    schema = applyScopesDirective(
      buildSubgraphSchema({ typeDefs: parse(typeDefsSource), resolvers: resolvers as GraphQLResolverMap<unknown> }),
      (context) => (context as { access: Access }).access,
    );
  });

  const run = async (principal: Principal, source: string, variableValues: Record<string, unknown> = {}) => {
    const contextValue = { ...authz.caller(principal), accessModel: policySource(), usageReads: reads, usageCompaction: compaction };
    const result = await graphql({ schema, source, variableValues, contextValue });
    const codes = (result.errors ?? []).map((error) => (error.originalError as { code?: string } | undefined)?.code ?? error.message);
    return { data: result.data as Record<string, any> | null | undefined, codes };
  };

  const ORGANIZATION = `query($id: ID!, $project: ID) {
    _entities(representations: [{ __typename: "Organization", id: $id }]) {
      ... on Organization {
        usage(filter: { product: GPUAAS }) { edges { node { id type product kind status project { id } actor { type id } unit quantity occurredAt ratedAt } } }
        ratedUsage(first: 2) {
          edges { node { kind product unit quantity amount period project { id } posting { id step period exactTotal posted delta } } }
          pageInfo { hasNextPage }
        }
        rejectedUsage(filter: { reason: "unknown_unit" }) { edges { node { source eventId reason envelope } } }
        usageReconciliation(driftOnly: true) { edges { node { product unit reportedCount ingestedCount ratedCount postedCount drift driftReasons } } }
        usageRollups(filter: { projectId: $project }, groupBy: [PROJECT, PRODUCT], granularity: DAY) {
          edges { node { bucket project { id } product currency lines quantity amount } }
        }
      }
    }
  }`;

  it("answers an organization's usage with enums, exact amounts and chain steps", async () => {
    const { data, codes } = await run(orgAdmin(org.organizationId), ORGANIZATION, { id: org.organizationId, project: otherProject.projectId });

    expect(codes).toEqual([]);
    const organization = data?._entities[0];
    expect(organization.usage.edges.map((edge: any) => edge.node)).toEqual([
      expect.objectContaining({ id: ids.accepted[2], type: 'gpuaas.usage.opened', product: 'GPUAAS', kind: 'OPENED', status: 'ACCEPTED', unit: 'gpu_hour', quantity: '1', ratedAt: null }),
    ]);
    expect(organization.ratedUsage.edges.map((edge: any) => edge.node)).toEqual([
      expect.objectContaining({ kind: 'POINT', product: 'TOKENFACTORY', amount: '0.500000000000', period: '2025-05', posting: expect.objectContaining({ step: 1, exactTotal: '0.500000000000', posted: '0', delta: '0' }) }),
      expect.objectContaining({ kind: 'WINDOW', product: 'GPUAAS', amount: '2.500000000000', posting: expect.objectContaining({ step: 2, exactTotal: '3.000000000000', posted: '3' }) }),
    ]);
    expect(organization.ratedUsage.pageInfo.hasNextPage).toBe(true);
    expect(organization.rejectedUsage.edges[0].node).toMatchObject({ source: 'REJECTED', eventId: ids.rejected, reason: 'unknown_unit' });
    expect(JSON.parse(organization.rejectedUsage.edges[0].node.envelope)).toMatchObject({ id: ids.rejected });
    expect(organization.usageReconciliation.edges.map((edge: any) => edge.node.driftReasons)).toEqual([['UNRATED'], ['REPORTED_NE_INGESTED']]);
    expect(organization.usageRollups.edges.map((edge: any) => edge.node)).toEqual([
      { bucket: '2025-05-07T00:00:00.000Z', project: { id: otherProject.projectId }, product: 'TOKENFACTORY', currency: 'USD', lines: '4', quantity: '8', amount: '2.000000000000' },
    ]);
  });

  it('refuses usage to a caller without platform:billing:read on the organization, and compaction to all but platform admins', async () => {
    const { codes } = await run(orgAdmin(stranger.organizationId), ORGANIZATION, { id: org.organizationId });
    const review = await run(orgAdmin(org.organizationId), 'mutation { recordUsageAuditReview(period: "2025-01") { period } }');

    expect(codes).toContain('AUTH_FORBIDDEN');
    expect(review.codes).toEqual(['AUTH_FORBIDDEN']);
  });

  it("records a month's audit review and reads its compaction state", async () => {
    const reviewed = await run(platformAdmin, 'mutation { recordUsageAuditReview(period: "2025-01", note: "ok") { period auditReviewedAt auditReviewedBy { type id } compactedAt eventsRemoved } }');
    const state = await run(platformAdmin, '{ usageCompaction(period: "2025-01") { period compactedAt } none: usageCompaction(period: "2024-12") { period } }');
    const blocked = await run(platformAdmin, 'mutation { compactUsage(period: "2025-02") { period } }');

    expect(reviewed.codes).toEqual([]);
    expect(reviewed.data?.recordUsageAuditReview).toMatchObject({ period: '2025-01', auditReviewedBy: { type: 'user', id: 'platform-admin' }, compactedAt: null, eventsRemoved: '0' });
    expect(state.data).toEqual({ usageCompaction: { period: '2025-01', compactedAt: null }, none: null });
    expect(blocked.codes).toEqual(['BILLING_COMPACTION_BLOCKED']);
  });
});

describe('the usage CSV export', () => {
  let server: Server;
  let port: number;
  let caller: Principal;
  let handled: Promise<void>;

  beforeAll(async () => {
    const route = usageExportRoute(reads, () => access(caller));
    // More lines than one read takes: the export reads page after page.
    await insertLines(fx.admin, stranger, {
      postingId: await insertChainStep(fx.admin, stranger),
      occurredAt: hoursAfter(base, 5),
      count: EXPORT_PAGE_SIZE + 20,
      quantity: 3n,
    });
    server = createServer((req, res) => {
      const ctx: Parameters<SubgraphHttpRoute['handle']>[0] = {
        req,
        res,
        url: new URL(req.url ?? '/', 'http://localhost'),
        correlationId: `usage-export-${randomUUID()}`,
        route: 'GET /api/usage.csv',
        call: { principal: caller, issuer: 'gateway', correlationId: 'usage-export', actor: undefined },
        accessModel: {} as AccessModelReader,
      };
      handled = route.handle(ctx).catch((error: unknown) => {
        res.statusCode = 403;
        res.end(String((error as { code?: string }).code));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const download = async (query: string): Promise<{ status: number; type: string | undefined; body: string }> => {
    const res = await new Promise<IncomingMessage>((resolve, reject) => get(`http://127.0.0.1:${port}/api/usage.csv?${query}`, resolve).on('error', reject));
    let body = '';
    for await (const chunk of res) body += String(chunk);
    await handled;
    return { status: res.statusCode ?? 0, type: res.headers['content-type'], body };
  };

  it("streams an organization's rated lines of a range as CSV, page after page", async () => {
    caller = orgAdmin(stranger.organizationId);

    const { status, type, body } = await download(`organizationId=${stranger.organizationId}&from=${hoursAfter(base, 4).toISOString()}`);

    const records = body.split('\r\n').filter((line) => line !== '');
    expect(status).toBe(200);
    expect(type).toBe('text/csv; charset=utf-8');
    expect(records[0]).toBe(
      'lineId,lineKey,kind,occurredAt,ratedAt,period,product,departmentId,projectId,apiKeyId,resourceType,resourceId,unit,unitVersion,quantity,currency,priceBookVersion,unitPrice,amount,usagePostingId,eventId,usageId,windowStart,windowEnd',
    );
    expect(records).toHaveLength(1 + EXPORT_PAGE_SIZE + 20);
    expect(records[1]!.split(',').slice(2, 7)).toEqual(['point', hoursAfter(base, 5).toISOString(), expect.any(String), '2025-05', 'tokenfactory']);
    expect(records[1]!.split(',').slice(14, 19)).toEqual(['3', 'USD', '1', '0.500000000000', '0.500000000000']);
  });

  it('defuses values a spreadsheet would run as formulas', async () => {
    caller = orgAdmin(org.organizationId);

    const { body } = await download(`organizationId=${org.organizationId}`);

    expect(body).toContain(`,"'=HYPERLINK(""x"")",`);
  });

  it('refuses before answering a caller who cannot read the organization, or a bad range', async () => {
    caller = orgAdmin(org.organizationId);

    expect(await download(`organizationId=${stranger.organizationId}`)).toMatchObject({ status: 403, body: 'AUTH_FORBIDDEN' });
    expect(await download(`organizationId=${org.organizationId}&from=yesterday`)).toMatchObject({ status: 403, body: 'BAD_REQUEST_INVALID_INPUT' });
    expect(await download('organizationId=')).toMatchObject({ status: 403, body: 'BAD_REQUEST_INVALID_INPUT' });
  });
});
