/**
 * Issue 16, reservations: two-phase spending against an organization's
 * funds and every monthly budget that applies, on a real database.
 */
import { randomUUID } from 'node:crypto';
import type { Actor } from '@aifactory/contracts';
import { AppError } from '@aifactory/errors';
import { createLogger } from '@aifactory/logging';
import { ServiceMetrics } from '@aifactory/telemetry';
import { BUDGET_KEY, MAX_TTL_KEY, Reservations, type ReserveRequest } from '../src/domain/reservations.js';
import { startReservationExpiry } from '../src/workers/reservation-expiry.js';
import { startBillingFixture, type BillingFixture } from './billing-fixture.js';
import { knownProject, policySnapshot, policySource, type PolicyLayers } from './reservation-fixture.js';

const GPUAAS = 'gpuaas';
const actor: Actor = { type: 'user', id: 'https://idp.test|alice' };

interface Org {
  organizationId: string;
  departmentId: string;
  projectId: string;
}

describe('reservations', () => {
  let f: BillingFixture;
  let reservations: Reservations;

  beforeAll(async () => {
    f = await startBillingFixture({ poolSize: 12 });
    reservations = new Reservations(f.database.pool, f.ledger);
  });

  afterAll(async () => {
    await f?.close();
  });

  /** A funded organization whose project billing knows, with its policy. */
  const fundedOrg = async (paid: bigint, promotional = 0n): Promise<Org> => {
    const org = await f.organization({ paid, promotional });
    await knownProject(f, org);
    return org;
  };

  const request = (org: Org, overrides: Partial<ReserveRequest> = {}): ReserveRequest => ({
    caller: GPUAAS,
    organizationId: org.organizationId,
    projectId: org.projectId,
    amount: 1000n,
    ttlSeconds: 600,
    idempotencyKey: randomUUID(),
    actor,
    correlationId: `corr-${randomUUID()}`,
    ...overrides,
  });

  const reserve = (org: Org, overrides: Partial<ReserveRequest> = {}, layers: PolicyLayers = {}) =>
    reservations.reserve(request(org, overrides), policySource([policySnapshot(org.organizationId, layers)]));

  const failure = async (promise: Promise<unknown>): Promise<AppError> => {
    const error = await promise.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  };

  const funds = async (organizationId: string) => {
    const { rows } = await f.admin.query<{ paid: string; promotional: string; reserved: string }>(
      'SELECT paid::text, promotional::text, reserved::text FROM organization_funds WHERE organization_id = $1',
      [organizationId],
    );
    return rows[0]!;
  };

  /** Each pool's spent and reserved this month, by level. */
  const budgets = async (org: Org) => {
    const { rows } = await f.admin.query<{ pool_level: string; spent: string; reserved: string }>(
      `SELECT pool_level, spent::text, reserved::text FROM budget_spend
       WHERE pool_id = ANY($1::uuid[]) AND period = date_trunc('month', CURRENT_TIMESTAMP AT TIME ZONE 'UTC')::date`,
      [[org.organizationId, org.departmentId, org.projectId]],
    );
    return Object.fromEntries(rows.map((row) => [row.pool_level, { spent: row.spent, reserved: row.reserved }]));
  };

  const transfersOf = async (organizationId: string) => {
    const { rows } = await f.admin.query<{ n: number }>('SELECT count(*)::int AS n FROM transfers WHERE organization_id = $1', [organizationId]);
    return rows[0]!.n;
  };

  const backdate = (reservationId: string) =>
    f.admin.query(`UPDATE reservations SET expires_at = CURRENT_TIMESTAMP - interval '1 second' WHERE id = $1`, [reservationId]);

  describe('holding', () => {
    it('lets exactly the 37 of 200 concurrent reservations through that the balance covers', async () => {
      const org = await fundedOrg(37_000n + 999n);
      const policy = policySource([policySnapshot(org.organizationId)]);
      const outcomes = await Promise.allSettled(Array.from({ length: 200 }, () => reservations.reserve(request(org), policy)));
      const held = outcomes.filter((outcome) => outcome.status === 'fulfilled');
      const refused = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason as AppError] : []));
      expect(held).toHaveLength(37);
      expect(refused).toHaveLength(163);
      expect(new Set(refused.map((error) => error.code))).toEqual(new Set(['BILLING_INSUFFICIENT_FUNDS']));
      expect(await funds(org.organizationId)).toEqual({ paid: '37999', promotional: '0', reserved: '37000' });
      expect(await budgets(org)).toEqual({
        organization: { spent: '0', reserved: '37000' },
        department: { spent: '0', reserved: '37000' },
        project: { spent: '0', reserved: '37000' },
      });
      const { rows } = await f.admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM reservations WHERE organization_id = $1 AND status = 'pending'`, [
        org.organizationId,
      ]);
      expect(rows[0]!.n).toBe(37);
    });

    it('lets exactly the 25 of 200 concurrent reservations through that a department budget covers', async () => {
      const org = await fundedOrg(1_000_000n);
      const policy = policySource([policySnapshot(org.organizationId, { departments: { [org.departmentId]: { [BUDGET_KEY]: '25000.75' } } })]);
      const outcomes = await Promise.allSettled(Array.from({ length: 200 }, () => reservations.reserve(request(org), policy)));
      expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(25);
      const codes = new Set(outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [(outcome.reason as AppError).code] : [])));
      expect(codes).toEqual(new Set(['BILLING_BUDGET_EXCEEDED']));
      expect((await funds(org.organizationId)).reserved).toBe('25000');
      expect((await budgets(org)).department).toEqual({ spent: '0', reserved: '25000' });
    });

    it('refuses, with the department named, a reservation the balance allows but the department budget does not, and holds nothing', async () => {
      const org = await fundedOrg(50_000n);
      const layers = { departments: { [org.departmentId]: { [BUDGET_KEY]: '3000' } } };
      await reserve(org, { amount: 2_500n }, layers);
      const error = await failure(reserve(org, { amount: 600n }, layers));
      expect(error.code).toBe('BILLING_BUDGET_EXCEEDED');
      expect(error.details).toMatchObject({ pool: { level: 'department', id: org.departmentId }, limit: '3000', available: '500', requested: '600' });
      expect(error.message).toContain('department budget');
      expect((await funds(org.organizationId)).reserved).toBe('2500');
      expect(await budgets(org)).toEqual({
        organization: { spent: '0', reserved: '2500' },
        department: { spent: '0', reserved: '2500' },
        project: { spent: '0', reserved: '2500' },
      });
      // What is left still fits.
      await expect(reserve(org, { amount: 500n }, layers)).resolves.toMatchObject({ created: true });
    });

    it('checks the project and organization budgets as well, the narrowest first', async () => {
      const org = await fundedOrg(50_000n);
      const layers = { organization: { [BUDGET_KEY]: '4000' }, projects: { [org.projectId]: { departmentId: org.departmentId, values: { [BUDGET_KEY]: '1500' } } } };
      expect((await failure(reserve(org, { amount: 1_501n }, layers))).details).toMatchObject({ pool: { level: 'project' }, available: '1500' });
      const other = { ...org, projectId: randomUUID() };
      await knownProject(f, other);
      await reserve(other, { amount: 3_000n }, layers);
      expect((await failure(reserve(org, { amount: 1_001n }, layers))).details).toMatchObject({ pool: { level: 'organization' }, available: '1000' });
    });

    it('counts spend already posted this month against the budget', async () => {
      const org = await fundedOrg(50_000n);
      const layers = { organization: { [BUDGET_KEY]: '2000' } };
      const { reservation } = await reserve(org, { amount: 1_500n }, layers);
      await reservations.post(GPUAAS, reservation.id, 1_200n, actor, 'corr-post');
      expect(await budgets(org)).toMatchObject({ organization: { spent: '1200', reserved: '0' } });
      expect((await failure(reserve(org, { amount: 801n }, layers))).code).toBe('BILLING_BUDGET_EXCEEDED');
      await expect(reserve(org, { amount: 800n }, layers)).resolves.toMatchObject({ created: true });
    });

    it('counts a hold of last month, which will post into this one, against this month\'s budget', async () => {
      const org = await fundedOrg(50_000n);
      const layers = { organization: { [BUDGET_KEY]: '2000' } };
      const { reservation } = await reserve(org, { amount: 1_500n }, layers);
      // As if it had been made before the month turned: its hold sits in last month's rows.
      await f.admin.query(
        `UPDATE budget_spend SET period = (period - interval '1 month')::date WHERE organization_id = $1`,
        [org.organizationId],
      );
      await f.admin.query(`UPDATE reservations SET period = (period - interval '1 month')::date WHERE id = $1`, [reservation.id]);
      expect((await failure(reserve(org, { amount: 501n }, layers))).code).toBe('BILLING_BUDGET_EXCEEDED');
      await expect(reserve(org, { amount: 500n }, layers)).resolves.toMatchObject({ created: true });
      // Settled, it lets go of last month's hold and spends in this month.
      await reservations.post(GPUAAS, reservation.id, 1_500n, actor, 'corr-post');
      expect(await budgets(org)).toMatchObject({ organization: { spent: '1500', reserved: '500' } });
      expect((await failure(reserve(org, { amount: 1n }, layers))).code).toBe('BILLING_BUDGET_EXCEEDED');
    });

    it('counts promotional credit as funds', async () => {
      const org = await fundedOrg(100n, 900n);
      await expect(reserve(org, { amount: 1_000n })).resolves.toMatchObject({ created: true });
      expect((await failure(reserve(org, { amount: 1n }))).details).toMatchObject({ available: '0', requested: '1' });
    });

    it('returns the first reservation for a repeated key and refuses the key with other parameters', async () => {
      const org = await fundedOrg(10_000n);
      const first = await reserve(org, { idempotencyKey: 'alloc-42', amount: 4_000n });
      const again = await reserve(org, { idempotencyKey: 'alloc-42', amount: 4_000n, correlationId: 'corr-retry' });
      expect(first.created).toBe(true);
      expect(again).toEqual({ reservation: first.reservation, created: false });
      expect((await funds(org.organizationId)).reserved).toBe('4000');
      expect((await failure(reserve(org, { idempotencyKey: 'alloc-42', amount: 4_001n }))).code).toBe('IDEMPOTENCY_KEY_REUSED');
      // Keys are per calling service.
      await expect(reserve(org, { idempotencyKey: 'alloc-42', amount: 4_000n, caller: 'appplatform' })).resolves.toMatchObject({ created: true });
    });

    it('holds once for the same key sent concurrently', async () => {
      const org = await fundedOrg(10_000n);
      const results = await Promise.all(Array.from({ length: 10 }, () => reserve(org, { idempotencyKey: 'same-key', amount: 700n })));
      expect(new Set(results.map((result) => result.reservation.id)).size).toBe(1);
      expect(results.filter((result) => result.created)).toHaveLength(1);
      expect((await funds(org.organizationId)).reserved).toBe('700');
    });

    it('answers a retry racing its original with the first reservation when only one hold fits', async () => {
      const org = await fundedOrg(1_000n);
      const results = await Promise.allSettled(Array.from({ length: 8 }, () => reserve(org, { idempotencyKey: 'one-fits', amount: 1_000n })));
      expect(results.map((result) => result.status)).toEqual(Array(8).fill('fulfilled'));
      const answers = results.map((result) => (result as PromiseFulfilledResult<Awaited<ReturnType<typeof reserve>>>).value);
      expect(new Set(answers.map((answer) => answer.reservation.id)).size).toBe(1);
      expect((await funds(org.organizationId)).reserved).toBe('1000');
    });

    it('refuses a project billing does not know, one of another organization, and an archived one', async () => {
      const org = await fundedOrg(10_000n);
      expect((await failure(reserve({ ...org, projectId: randomUUID() }))).code).toBe('BILLING_PROJECT_UNKNOWN');
      const elsewhere = await fundedOrg(10_000n);
      expect((await failure(reserve({ ...org, projectId: elsewhere.projectId }))).code).toBe('BILLING_PROJECT_UNKNOWN');
      await knownProject(f, org, 'archived');
      expect((await failure(reserve(org))).code).toBe('BILLING_PROJECT_ARCHIVED');
    });

    it('refuses an organization billing has opened no accounts for', async () => {
      const org = { organizationId: randomUUID(), departmentId: randomUUID(), projectId: randomUUID() };
      await knownProject(f, org);
      expect((await failure(reserve(org))).code).toBe('BILLING_ORGANIZATION_UNKNOWN');
    });

    it('refuses on stale or missing policy, and holds nothing', async () => {
      const org = await fundedOrg(10_000n);
      const snapshot = policySnapshot(org.organizationId);
      for (const policy of [policySource([snapshot], 5 * 60_000 + 1), policySource([snapshot], null), policySource([])]) {
        expect((await failure(reservations.reserve(request(org), policy))).code).toBe('POLICY_SNAPSHOT_STALE');
      }
      await expect(reservations.reserve(request(org), policySource([snapshot], 5 * 60_000))).resolves.toMatchObject({ created: true });
      expect((await funds(org.organizationId)).reserved).toBe('1000');
    });

    it('takes a TTL from 1 s to billing.reservation.max_ttl', async () => {
      const org = await fundedOrg(100_000n);
      for (const ttlSeconds of [0, -5, 1.5, 86_401]) {
        const error = await failure(reserve(org, { ttlSeconds }));
        expect([error.code, error.details?.max]).toEqual(['BILLING_RESERVATION_TTL_INVALID', 86_400]);
      }
      const { reservation } = await reserve(org, { ttlSeconds: 86_400 });
      expect(reservation.expiresAt.getTime() - reservation.createdAt.getTime()).toBe(86_400_000);
      await expect(reserve(org, { ttlSeconds: 1 })).resolves.toMatchObject({ created: true });
      const tighter = { projects: { [org.projectId]: { departmentId: org.departmentId, values: { [MAX_TTL_KEY]: 'PT1M' } } } };
      expect((await failure(reserve(org, { ttlSeconds: 61 }, tighter))).details).toMatchObject({ max: 60 });
      await expect(reserve(org, { ttlSeconds: 60 }, tighter)).resolves.toMatchObject({ created: true });
    });

    it('refuses a zero amount', async () => {
      const org = await fundedOrg(10_000n);
      expect((await failure(reserve(org, { amount: 0n }))).code).toBe('BILLING_AMOUNT_INVALID');
    });
  });

  describe('posting', () => {
    it('charges what the delivery cost, lets the hold go, and records spend, in one posting', async () => {
      const org = await fundedOrg(10_000n, 300n);
      const { reservation } = await reserve(org, { amount: 1_000n });
      const posted = await reservations.post(GPUAAS, reservation.id, 800n, actor, 'corr-post-1');
      expect(posted.resolved).toBe(true);
      expect(posted.reservation).toMatchObject({ status: 'posted', postedAmount: 800n, overReservation: false, postingId: `reservation:${reservation.id}` });
      expect(await funds(org.organizationId)).toEqual({ paid: '9500', promotional: '0', reserved: '0' });
      expect(await budgets(org)).toEqual({
        organization: { spent: '800', reserved: '0' },
        department: { spent: '800', reserved: '0' },
        project: { spent: '800', reserved: '0' },
      });
      const { rows } = await f.admin.query<{ kind: string; flagged: boolean; actor: Actor; project_id: string }>(
        'SELECT kind, flagged, actor, project_id FROM postings WHERE id = $1',
        [`reservation:${reservation.id}`],
      );
      expect(rows).toEqual([{ kind: 'reservation_post', flagged: false, actor, project_id: org.projectId }]);
    });

    it('resolves once: a repeated post, whatever its amount, returns the first result and changes nothing', async () => {
      const org = await fundedOrg(10_000n);
      const { reservation } = await reserve(org, { amount: 1_000n });
      const first = await reservations.post(GPUAAS, reservation.id, 900n, actor, 'corr-a');
      const transfers = await transfersOf(org.organizationId);
      const again = await reservations.post(GPUAAS, reservation.id, 100n, actor, 'corr-b');
      expect(again).toEqual({ reservation: first.reservation, resolved: false });
      expect((await reservations.void(GPUAAS, reservation.id)).reservation.status).toBe('posted');
      expect(await transfersOf(org.organizationId)).toBe(transfers);
      expect(await funds(org.organizationId)).toEqual({ paid: '9100', promotional: '0', reserved: '0' });
    });

    it('resolves once under concurrent posts and voids', async () => {
      const org = await fundedOrg(10_000n);
      const { reservation } = await reserve(org, { amount: 1_000n });
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? reservations.post(GPUAAS, reservation.id, 500n, actor, `corr-${i}`) : reservations.void(GPUAAS, reservation.id))),
      );
      expect(results.filter((result) => result.resolved)).toHaveLength(1);
      const winner = results.find((result) => result.resolved)!.reservation;
      for (const result of results) expect(result.reservation).toEqual(winner);
      expect((await funds(org.organizationId)).reserved).toBe('0');
      expect(await transfersOf(org.organizationId)).toBe(winner.status === 'posted' ? 2 : 1);
    });

    it('posts above the reservation anyway, flagged, taking the paid balance below zero', async () => {
      const org = await fundedOrg(1_200n, 100n);
      const { reservation } = await reserve(org, { amount: 1_000n });
      const posted = await reservations.post(GPUAAS, reservation.id, 1_500n, actor, 'corr-over');
      expect(posted.reservation).toMatchObject({ status: 'posted', postedAmount: 1_500n, overReservation: true });
      expect(await funds(org.organizationId)).toEqual({ paid: '-200', promotional: '0', reserved: '0' });
      const { rows } = await f.admin.query<{ flagged: boolean }>('SELECT flagged FROM postings WHERE id = $1', [posted.reservation.postingId]);
      expect(rows[0]!.flagged).toBe(true);
      expect((await budgets(org)).project).toEqual({ spent: '1500', reserved: '0' });
    });

    it('posts zero as a release with no posting, and refuses a negative amount', async () => {
      const org = await fundedOrg(10_000n);
      const { reservation } = await reserve(org, { amount: 1_000n });
      const before = await transfersOf(org.organizationId);
      expect((await failure(reservations.post(GPUAAS, reservation.id, -1n, actor, 'corr-negative'))).code).toBe('BILLING_AMOUNT_INVALID');
      const posted = await reservations.post(GPUAAS, reservation.id, 0n, actor, 'corr-zero');
      expect(posted.reservation).toMatchObject({ status: 'posted', postedAmount: 0n, postingId: null });
      expect(await transfersOf(org.organizationId)).toBe(before);
      expect(await funds(org.organizationId)).toEqual({ paid: '10000', promotional: '0', reserved: '0' });
      expect((await budgets(org)).organization).toEqual({ spent: '0', reserved: '0' });
    });

    it("answers BILLING_RESERVATION_NOT_FOUND for another service's reservation and for an unknown id", async () => {
      const org = await fundedOrg(10_000n);
      const { reservation } = await reserve(org);
      expect((await failure(reservations.post('appplatform', reservation.id, 10n, actor, 'corr'))).code).toBe('BILLING_RESERVATION_NOT_FOUND');
      expect((await failure(reservations.void('appplatform', reservation.id))).code).toBe('BILLING_RESERVATION_NOT_FOUND');
      expect((await failure(reservations.void(GPUAAS, randomUUID()))).code).toBe('BILLING_RESERVATION_NOT_FOUND');
      expect((await failure(reservations.void(GPUAAS, 'not-a-uuid'))).code).toBe('BILLING_RESERVATION_NOT_FOUND');
      expect((await funds(org.organizationId)).reserved).toBe('1000');
    });
  });

  describe('voiding and expiry', () => {
    it('voids once: the hold goes, nothing is posted, and a later post returns the void', async () => {
      const org = await fundedOrg(10_000n);
      const { reservation } = await reserve(org, { amount: 2_000n });
      const voided = await reservations.void(GPUAAS, reservation.id);
      expect(voided).toMatchObject({ resolved: true, reservation: { status: 'voided', postedAmount: null, postingId: null } });
      expect(await funds(org.organizationId)).toEqual({ paid: '10000', promotional: '0', reserved: '0' });
      expect((await budgets(org)).department).toEqual({ spent: '0', reserved: '0' });
      expect(await reservations.void(GPUAAS, reservation.id)).toEqual({ reservation: voided.reservation, resolved: false });
      expect(await reservations.post(GPUAAS, reservation.id, 2_000n, actor, 'corr')).toEqual({ reservation: voided.reservation, resolved: false });
      expect(await transfersOf(org.organizationId)).toBe(1);
    });

    it('expires due reservations once, in a sweep, and leaves the others held', async () => {
      const org = await fundedOrg(10_000n);
      const due = await reserve(org, { amount: 3_000n });
      const later = await reserve(org, { amount: 1_000n });
      await backdate(due.reservation.id);
      let swept = 0;
      for (let expired = await reservations.expireDue(); expired > 0; expired = await reservations.expireDue()) swept += expired;
      expect(swept).toBeGreaterThanOrEqual(1);
      expect(await funds(org.organizationId)).toEqual({ paid: '10000', promotional: '0', reserved: '1000' });
      expect((await budgets(org)).project).toEqual({ spent: '0', reserved: '1000' });
      const posted = await reservations.post(GPUAAS, due.reservation.id, 3_000n, actor, 'corr');
      expect(posted).toMatchObject({ resolved: false, reservation: { status: 'expired', postingId: null } });
      expect(await reservations.expireDue()).toBe(0);
      expect((await reservations.void(GPUAAS, later.reservation.id)).reservation.status).toBe('voided');
    });

    it('resolves a reservation past its time as expired when it is posted before the sweep reaches it', async () => {
      const org = await fundedOrg(10_000n);
      const { reservation } = await reserve(org, { amount: 3_000n });
      await backdate(reservation.id);
      const posted = await reservations.post(GPUAAS, reservation.id, 3_000n, actor, 'corr');
      expect(posted).toMatchObject({ resolved: true, reservation: { status: 'expired', postedAmount: null, postingId: null } });
      expect(await funds(org.organizationId)).toEqual({ paid: '10000', promotional: '0', reserved: '0' });
      expect(await transfersOf(org.organizationId)).toBe(1);
      expect(await reservations.post(GPUAAS, reservation.id, 3_000n, actor, 'corr')).toEqual({ reservation: posted.reservation, resolved: false });
    });

    it('expires a one-second reservation by itself with the sweeper running, and counts it', async () => {
      const org = await fundedOrg(10_000n);
      const metrics = new ServiceMetrics('billing-test');
      const counted = new Reservations(f.database.pool, f.ledger);
      counted.attachMetrics(metrics);
      const sweeper = startReservationExpiry({ reservations: counted, metrics, logger: createLogger({ service: 'billing-test', level: 'silent' }), intervalMs: 50 });
      try {
        const { reservation } = await counted.reserve(request(org, { ttlSeconds: 1 }), policySource([policySnapshot(org.organizationId)]));
        const deadline = Date.now() + 10_000;
        while ((await funds(org.organizationId)).reserved !== '0' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
        const { rows } = await f.admin.query<{ status: string }>('SELECT status FROM reservations WHERE id = $1', [reservation.id]);
        expect(rows[0]!.status).toBe('expired');
        const text = (await metrics.render()).body;
        expect(text).toMatch(/aif_billing_reservations_total\{[^}]*outcome="reserved"[^}]*\} 1/);
        expect(text).toMatch(/aif_billing_reservations_total\{[^}]*outcome="expired"[^}]*\} [1-9]/);
        expect(text).toMatch(/aif_billing_open_reservations\{[^}]*\} \d+/);
      } finally {
        await sweeper.stop();
      }
    });
  });
});
