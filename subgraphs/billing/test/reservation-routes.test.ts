/**
 * Issue 16, the internal reservation API over HTTP: only a platform
 * service's own token with `platform:billing:reserve`, amounts as strings,
 * the acting party recorded, refusals in the REST envelope.
 */
import { randomUUID } from 'node:crypto';
import type { AccessModelReader } from '@aifactory/access-model';
import { AppError } from '@aifactory/errors';
import { startHttpServer, type RunningHttpServer } from '@aifactory/http';
import { createLogger } from '@aifactory/logging';
import type { VerifiedInternalCall } from '@aifactory/service-auth';
import { subgraphHttpRoutes } from '@aifactory/subgraph-kit';
import { Reservations } from '../src/domain/reservations.js';
import { reservationRoutes } from '../src/http/reservation-routes.js';
import { startBillingFixture, type BillingFixture } from './billing-fixture.js';
import { knownProject, policySnapshot, policySource } from './reservation-fixture.js';

const RESERVE = 'platform:billing:reserve';

/** The verified calls the fake verifier answers, by bearer token. */
const CALLS: Record<string, VerifiedInternalCall> = {
  gpuaas: {
    principal: {
      type: 'service',
      subject: 'gpuaas',
      platformRoles: [],
      grants: [],
      scopes: [RESERVE],
      onBehalfOf: { type: 'user', subject: 'https://idp.test|alice' },
      actorChain: ['gpuaas'],
    },
    issuer: 'gpuaas',
    correlationId: 'corr-gpuaas',
    actor: { sub: 'gpuaas' },
    credential: 'service_identity',
  },
  appplatform: {
    principal: { type: 'service', subject: 'appplatform', platformRoles: [], grants: [], scopes: [RESERVE] },
    issuer: 'appplatform',
    correlationId: 'corr-app',
    actor: undefined,
    credential: 'service_identity',
  },
  tokenfactory: {
    principal: { type: 'service', subject: 'tokenfactory', platformRoles: [], grants: [], scopes: ['platform:billing:read'] },
    issuer: 'tokenfactory',
    correlationId: 'corr-tf',
    actor: undefined,
    credential: 'service_identity',
  },
  // The gateway's own token may carry any principal: it never reserves.
  gateway: {
    principal: { type: 'service', subject: 'gateway', platformRoles: [], grants: [], scopes: [RESERVE] },
    issuer: 'gateway',
    correlationId: 'corr-gw',
    actor: undefined,
    credential: 'platform',
  },
  admin: {
    principal: { type: 'user', subject: 'admin-1', platformRoles: ['platform_admin'], grants: [] },
    issuer: 'gateway',
    correlationId: 'corr-admin',
    actor: undefined,
    credential: 'platform',
  },
};

describe('reservation routes', () => {
  let f: BillingFixture;
  let server: RunningHttpServer;
  let org: { organizationId: string; departmentId: string; projectId: string };

  beforeAll(async () => {
    f = await startBillingFixture();
    org = await f.organization({ paid: 10_000n });
    await knownProject(f, org);
    const policy = policySource([policySnapshot(org.organizationId)]);
    const routes = subgraphHttpRoutes(
      reservationRoutes(new Reservations(f.database.pool, f.ledger)),
      async (ctx) => {
        const call = CALLS[(ctx.req.headers.authorization ?? '').replace('Bearer ', '')];
        if (!call) throw new AppError('INTERNAL_AUTH_UNAUTHENTICATED', 'A valid internal service token is required');
        return call;
      },
      policy as unknown as AccessModelReader,
      // The reservation routes decide by the service identity and never ask for it.
      () => {
        throw new Error('no Access in this test');
      },
    );
    server = await startHttpServer({ logger: createLogger({ service: 'billing', level: 'silent' }), routes, shutdownGraceMs: 100 }, 0);
  });

  afterAll(async () => {
    await server?.close();
    await f?.close();
  });

  const call = async (as: string, path: string, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) => {
    const res = await fetch(`${server.url}/api/internal/reservations${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${as}`, ...headers },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const reserveBody = (overrides: Record<string, unknown> = {}) => ({
    organizationId: org.organizationId,
    projectId: org.projectId,
    amount: '1500',
    ttlSeconds: 300,
    idempotencyKey: randomUUID(),
    ...overrides,
  });

  it('reserves for a service holding the scope (201, amounts as strings), and answers a retry with the same reservation (200)', async () => {
    const body = reserveBody({ description: 'allocation a-1' });
    const created = await call('gpuaas', '', body);
    expect(created.status).toBe(201);
    expect(created.body.reservation).toMatchObject({
      status: 'pending',
      organizationId: org.organizationId,
      departmentId: org.departmentId,
      projectId: org.projectId,
      currency: 'USD',
      amount: '1500',
      description: 'allocation a-1',
      postedAmount: null,
      idempotencyKey: body.idempotencyKey,
    });
    const retry = await call('gpuaas', '', body);
    expect([retry.status, retry.body.reservation.id]).toEqual([200, created.body.reservation.id]);
    // The party the service acted for is the reservation's actor.
    const { rows } = await f.admin.query('SELECT caller, actor, correlation_id FROM reservations WHERE id = $1', [created.body.reservation.id]);
    expect(rows[0]).toMatchObject({ caller: 'gpuaas', actor: { type: 'user', id: 'https://idp.test|alice' } });
  });

  it('posts and voids the caller\'s own reservations', async () => {
    const first = (await call('gpuaas', '', reserveBody())).body.reservation;
    const posted = await call('gpuaas', '/post', { reservationId: first.id, amount: '600' });
    expect([posted.status, posted.body.reservation]).toEqual([200, expect.objectContaining({ status: 'posted', postedAmount: '600', postingId: `reservation:${first.id}` })]);
    const second = (await call('gpuaas', '', reserveBody())).body.reservation;
    const voided = await call('gpuaas', '/void', { reservationId: second.id });
    expect([voided.status, voided.body.reservation.status]).toEqual([200, 'voided']);
    const elsewhere = await call('appplatform', '/void', { reservationId: (await call('gpuaas', '', reserveBody())).body.reservation.id });
    expect([elsewhere.status, elsewhere.body.error.code]).toEqual([404, 'BILLING_RESERVATION_NOT_FOUND']);
  });

  it.each([
    ['a service without the reserve scope', 'tokenfactory', /tokenfactory service does not hold platform:billing:reserve/],
    ["the gateway's own token", 'gateway', /Only a platform service/],
    ['a platform admin through the gateway', 'admin', /Only a platform service/],
  ])('refuses %s with AUTH_FORBIDDEN (403) and holds nothing', async (_who, as, message) => {
    const before = await f.admin.query('SELECT reserved::text FROM organization_funds WHERE organization_id = $1', [org.organizationId]);
    const refused = await call(as, '', reserveBody());
    expect([refused.status, refused.body.error.code]).toEqual([403, 'AUTH_FORBIDDEN']);
    expect(refused.body.error.message).toMatch(message);
    const after = await f.admin.query('SELECT reserved::text FROM organization_funds WHERE organization_id = $1', [org.organizationId]);
    expect(after.rows).toEqual(before.rows);
  });

  it('answers billing\'s refusals in the REST envelope', async () => {
    const broke = await call('gpuaas', '', reserveBody({ amount: '1000000' }));
    expect([broke.status, broke.body.error.code]).toEqual([402, 'BILLING_INSUFFICIENT_FUNDS']);
    expect(broke.body.error.correlationId).toEqual(expect.any(String));
    expect((await call('gpuaas', '', reserveBody({ amount: 1500 }))).body.error.code).toBe('BILLING_AMOUNT_INVALID');
    expect((await call('gpuaas', '', reserveBody({ amount: '0' }))).body.error.code).toBe('BILLING_AMOUNT_INVALID');
    expect((await call('gpuaas', '', reserveBody({ ttlSeconds: 0 }))).body.error.code).toBe('BILLING_RESERVATION_TTL_INVALID');
    expect((await call('gpuaas', '', reserveBody({ projectId: 'p-1' }))).status).toBe(400);
    expect((await call('gpuaas', '', reserveBody(), { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await call('nobody', '', reserveBody())).status).toBe(401);
  });
});
