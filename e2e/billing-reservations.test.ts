/**
 * Issue 16, reservations end to end: a product service reserves and posts
 * in billing with its own service identity through @aifactory/billing-client,
 * for a project billing learned from iam's events; a service without the
 * reserve scope is refused; with billing down the client fails closed.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { ReservationClient, type Reservation, type ReserveInput } from '@aifactory/billing-client';
import { runDevSeed, type SeedResult } from '@aifactory/devstack';
import { AppError } from '@aifactory/errors';
import { createLogger } from '@aifactory/logging';
import { loadSigningKey, ServiceTokenIssuer } from '@aifactory/service-auth';
import { ServiceClient } from '@aifactory/subgraph-kit';
import { eventually } from './support/eventually.js';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

describe('billing reservations', () => {
  let t: TestPlatform;
  let admin: pg.Client;
  let seeded: SeedResult;
  let billingUrl: string;
  let gpuaas: ReservationClient;
  let tokenfactory: ReservationClient;
  let tokenfactoryIssuer: ServiceTokenIssuer;

  const clientOf = (issuer: ServiceTokenIssuer) =>
    new ReservationClient(
      new ServiceClient({ issuer, urls: { billing: billingUrl }, timeoutMs: 5_000, logger: createLogger({ service: issuer.service, level: 'silent' }) }),
    );
  const input = (overrides: Partial<ReserveInput> = {}): ReserveInput => ({
    organizationId: seeded.organizationId,
    projectId: seeded.projectId,
    amount: 2_500n,
    ttlSeconds: 300,
    idempotencyKey: randomUUID(),
    ...overrides,
  });
  const funds = async () =>
    (await admin.query('SELECT paid::text, reserved::text FROM billing.organization_funds WHERE organization_id = $1', [seeded.organizationId])).rows[0] as {
      paid: string;
      reserved: string;
    };
  const failure = async (promise: Promise<unknown>): Promise<AppError> => {
    const error = await promise.then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  };

  beforeAll(async () => {
    t = await startTestPlatform();
    const gpuaasKey = await t.keys.ed25519('service-gpuaas');
    const tokenfactoryKey = await t.keys.ed25519('service-tokenfactory');
    seeded = await runDevSeed(t.db.layout, {
      eventSubjectPrefix: t.eventSubjectPrefix,
      serviceCredentialFiles: { gpuaas: gpuaasKey.privateKeyFile, tokenfactory: tokenfactoryKey.privateKeyFile },
    });
    billingUrl = t.platform.subgraphUrls.billing!.replace(/\/graphql$/, '');
    gpuaas = clientOf(new ServiceTokenIssuer({ service: 'gpuaas', key: await loadSigningKey(gpuaasKey.privateKeyFile) }));
    tokenfactoryIssuer = new ServiceTokenIssuer({ service: 'tokenfactory', key: await loadSigningKey(tokenfactoryKey.privateKeyFile) });
    tokenfactory = clientOf(tokenfactoryIssuer);
    admin = await t.db.admin();
    // Money to reserve against, the way a platform admin adds it.
    const credit = await t.graphql({
      query: 'mutation Credit($input: CreditBalanceInput!) { creditBalance(input: $input) { created } }',
      variables: { input: { organizationId: seeded.organizationId, amount: '50000', kind: 'PAID', reason: 'e2e reservations', idempotencyKey: randomUUID() } },
      assertion: await t.adminAssertion(),
    });
    expect(credit.body.data?.creditBalance).toEqual({ created: true });
  }, 120_000);

  afterAll(async () => {
    await admin?.end();
    await t?.close();
  });

  it('lets gpuaas reserve for a project billing learned from iam, then post what it cost', async () => {
    const before = await funds();
    const key = randomUUID();
    // The project reaches billing through iam's events, and the organization's policy through the read model.
    let reservation!: Reservation;
    await eventually(async () => {
      reservation = await gpuaas.reserve(input({ idempotencyKey: key }));
    }, 20_000);
    expect(reservation).toMatchObject({ status: 'pending', amount: 2_500n, projectId: seeded.projectId, departmentId: seeded.departmentId, currency: 'USD' });
    expect(await funds()).toEqual({ paid: before.paid, reserved: (BigInt(before.reserved) + 2_500n).toString() });
    // A retry (a lost answer) gets the same reservation.
    expect((await gpuaas.reserve(input({ idempotencyKey: key }))).id).toBe(reservation.id);

    const posted = await gpuaas.post(reservation.id, 2_000n);
    expect(posted).toMatchObject({ status: 'posted', postedAmount: 2_000n, overReservation: false, postingId: `reservation:${reservation.id}` });
    expect(await funds()).toEqual({ paid: (BigInt(before.paid) - 2_000n).toString(), reserved: before.reserved });
    expect(await gpuaas.post(reservation.id, 9_999n)).toEqual(posted);
    const { rows } = await admin.query('SELECT kind, project_id FROM billing.postings WHERE id = $1', [`reservation:${reservation.id}`]);
    expect(rows).toEqual([{ kind: 'reservation_post', project_id: seeded.projectId }]);
  });

  it("refuses tokenfactory's identity, which does not hold platform:billing:reserve, with 403", async () => {
    const before = await funds();
    // With the scopes its identity holds: billing's route refuses it.
    const token = await tokenfactoryIssuer.mint({ audience: 'billing', scopes: ['platform:billing:read'], correlationId: `tf-${randomUUID()}` });
    const res = await fetch(`${billingUrl}/api/internal/reservations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ ...input(), amount: '100' }),
    });
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect([res.status, body.error.code]).toEqual([403, 'AUTH_FORBIDDEN']);
    expect(body.error.message).toContain('platform:billing:reserve');
    // Claiming the scope anyway: its token does not even verify.
    const claimed = await failure(tokenfactory.reserve(input()));
    expect([claimed.code, claimed.httpStatus]).toEqual(['INTERNAL_AUTH_SCOPE_NOT_ALLOWED', 403]);
    expect(await funds()).toEqual(before);
    const refused = t.logs.lines().find((line) => line.service === 'billing' && line.msg === 'request refused' && line.code === 'AUTH_FORBIDDEN');
    expect(refused?.actor).toEqual({ type: 'service', id: 'tokenfactory' });
  });

  it('answers BILLING_UNAVAILABLE from the client once billing is down, so gpuaas refuses its own request', async () => {
    await t.platform.stopSubgraph('billing');
    const error = await failure(gpuaas.reserve(input()));
    expect([error.code, error.httpStatus]).toEqual(['BILLING_UNAVAILABLE', 503]);
  });
});
