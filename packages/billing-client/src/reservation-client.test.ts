import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import { AppError } from '@aifactory/errors';
import { createLogger } from '@aifactory/logging';
import { keyIdOf, ServiceTokenIssuer, type VerifiedInternalCall } from '@aifactory/service-auth';
import { ServiceClient } from '@aifactory/subgraph-kit';
import { ReservationClient } from './reservation-client.js';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

type Answer = (received: Received, res: ServerResponse) => void;

/** A stand-in for billing's reservation routes: answers each request as the test says. */
async function fakeBilling(): Promise<{ url: string; received: Received[]; answer(next: Answer): void; close(): Promise<void> }> {
  const received: Received[] = [];
  let respond: Answer = (_received, res) => res.writeHead(500).end();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const call = { path: req.url ?? '', headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') as unknown };
      received.push(call);
      respond(call, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    answer: (next) => {
      respond = next;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const json = (status: number, body: unknown): Answer => (_received, res) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

const RESERVATION = {
  id: '2f1d4c1e-8a3b-4c55-9a5e-0e8f6f3c9b10',
  status: 'pending',
  organizationId: '6a7e1c8b-2d4f-4e1a-9b3c-5d6e7f8a9b0c',
  departmentId: '7b8f2d9c-3e5a-4f2b-8c4d-6e7f8a9b0c1d',
  projectId: '8c9a3e0d-4f6b-4a3c-9d5e-7f8a9b0c1d2e',
  currency: 'USD',
  amount: '9007199254740993',
  period: '2026-11-01',
  idempotencyKey: 'alloc-1',
  description: null,
  expiresAt: '2026-11-24T06:00:00.000Z',
  createdAt: '2026-11-24T05:50:00.000Z',
  resolvedAt: null,
  postedAmount: null,
  overReservation: false,
  postingId: null,
};

const served: VerifiedInternalCall = {
  principal: { type: 'user', subject: 'https://idp.test|alice', platformRoles: [], grants: [] },
  issuer: 'gateway',
  correlationId: 'corr-served-1',
  actor: undefined,
};

async function failure(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describe('ReservationClient', () => {
  let billing: Awaited<ReturnType<typeof fakeBilling>>;
  let client: ReservationClient;

  const clientFor = async (url: string, timeoutMs = 300) => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const issuer = new ServiceTokenIssuer({ service: 'gpuaas', key: { kid: await keyIdOf(publicKey), privateKey } });
    return new ReservationClient(new ServiceClient({ issuer, urls: { billing: url }, timeoutMs, logger: createLogger({ service: 'gpuaas', level: 'silent' }) }));
  };

  beforeAll(async () => {
    billing = await fakeBilling();
    client = await clientFor(billing.url);
  });

  afterAll(async () => {
    await billing?.close();
  });

  it('reserves with its own token for billing alone, the reserve scope and the served caller, amounts as strings both ways', async () => {
    billing.answer(json(201, { reservation: RESERVATION }));
    const reservation = await client.reserve(
      { organizationId: RESERVATION.organizationId, projectId: RESERVATION.projectId, amount: 9_007_199_254_740_993n, ttlSeconds: 600, idempotencyKey: 'alloc-1' },
      { onBehalfOf: served },
    );
    expect(reservation).toMatchObject({ id: RESERVATION.id, status: 'pending', amount: 9_007_199_254_740_993n, postedAmount: null, expiresAt: new Date(RESERVATION.expiresAt) });
    const sent = billing.received.at(-1)!;
    expect(sent.path).toBe('/api/internal/reservations');
    expect(sent.body).toEqual({ organizationId: RESERVATION.organizationId, projectId: RESERVATION.projectId, amount: '9007199254740993', ttlSeconds: 600, idempotencyKey: 'alloc-1' });
    const claims = decodeJwt(sent.headers.authorization!.replace('Bearer ', ''));
    expect(claims).toMatchObject({ iss: 'gpuaas', aud: 'billing', scopes: ['platform:billing:reserve'], sub: served.principal.subject, act: { sub: 'gpuaas' } });
    expect(sent.headers['x-correlation-id']).toBe('corr-served-1');
  });

  it('posts and voids on their routes', async () => {
    billing.answer(json(200, { reservation: { ...RESERVATION, status: 'posted', postedAmount: '1200', postingId: `reservation:${RESERVATION.id}` } }));
    expect(await client.post(RESERVATION.id, 1_200n)).toMatchObject({ status: 'posted', postedAmount: 1_200n });
    expect(billing.received.at(-1)).toMatchObject({ path: '/api/internal/reservations/post', body: { reservationId: RESERVATION.id, amount: '1200' } });
    billing.answer(json(200, { reservation: { ...RESERVATION, status: 'voided', resolvedAt: '2026-11-24T05:55:00.000Z' } }));
    expect(await client.void(RESERVATION.id)).toMatchObject({ status: 'voided', resolvedAt: new Date('2026-11-24T05:55:00.000Z') });
    expect(billing.received.at(-1)).toMatchObject({ path: '/api/internal/reservations/void', body: { reservationId: RESERVATION.id } });
  });

  it.each([
    [402, 'BILLING_INSUFFICIENT_FUNDS', 'Insufficient funds: 10 minor units of USD available, 100 requested'],
    [402, 'BILLING_BUDGET_EXCEEDED', 'The department budget for 2026-11 has 0 minor units left of 5000, 100 requested'],
    [403, 'AUTH_FORBIDDEN', 'The gpuaas service does not hold platform:billing:reserve'],
    [404, 'BILLING_RESERVATION_NOT_FOUND', 'No reservation of yours has this id'],
  ])("keeps billing's refusal %i %s and its message", async (status, code, message) => {
    billing.answer(json(status, { error: { code, message, correlationId: 'corr-billing' } }));
    const error = await failure(client.post(RESERVATION.id, 100n));
    expect([error.code, error.message, error.details]).toEqual([code, message, { service: 'billing', status, correlationId: 'corr-billing' }]);
  });

  it.each([
    ['a 503', json(503, { error: { code: 'POLICY_SNAPSHOT_STALE', message: 'Policy is temporarily unavailable; retry shortly' } })],
    ['a 500', json(500, { error: { code: 'INTERNAL_ERROR', message: 'Internal error' } })],
    ['a 502 from a proxy, not JSON', ((_received, res) => res.writeHead(502).end('<html>bad gateway</html>')) as Answer],
    ['a 2xx it cannot read', json(201, { reservation: { ...RESERVATION, amount: 12.5 } })],
    ['a 2xx that is not JSON', ((_received, res) => res.writeHead(200).end('ok')) as Answer],
    ['a 4xx with a code this platform does not know', json(409, { error: { code: 'BILLING_SOMETHING_NEW', message: 'new' } })],
  ])('fails closed with BILLING_UNAVAILABLE on %s', async (_what, answer) => {
    billing.answer(answer);
    const error = await failure(client.reserve({ organizationId: RESERVATION.organizationId, projectId: RESERVATION.projectId, amount: 1n, ttlSeconds: 60, idempotencyKey: 'k' }));
    expect(error.code).toBe('BILLING_UNAVAILABLE');
    expect(error.httpStatus).toBe(503);
    expect(error.details).toMatchObject({ service: 'billing', path: '/api/internal/reservations' });
  });

  it('fails closed with BILLING_UNAVAILABLE when billing does not answer in time', async () => {
    billing.answer(() => undefined);
    const error = await failure(client.void(RESERVATION.id, { timeoutMs: 100 }));
    expect(error.code).toBe('BILLING_UNAVAILABLE');
    expect((error.cause as AppError).code).toBe('UPSTREAM_TIMEOUT');
  });

  it('fails closed with BILLING_UNAVAILABLE when the answer stalls after its headers', async () => {
    billing.answer((_received, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"reservation":');
    });
    expect((await failure(client.void(RESERVATION.id, { timeoutMs: 200 }))).code).toBe('BILLING_UNAVAILABLE');
  });

  it('fails closed with BILLING_UNAVAILABLE when billing is down or not configured', async () => {
    const down = await fakeBilling();
    await down.close();
    const unreachable = await clientFor(down.url);
    const error = await failure(unreachable.void(RESERVATION.id));
    expect([error.code, (error.cause as AppError).code]).toEqual(['BILLING_UNAVAILABLE', 'UPSTREAM_UNAVAILABLE']);
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const issuer = new ServiceTokenIssuer({ service: 'gpuaas', key: { kid: await keyIdOf(publicKey), privateKey } });
    const unconfigured = new ReservationClient(new ServiceClient({ issuer, urls: {}, timeoutMs: 100, logger: createLogger({ service: 'gpuaas', level: 'silent' }) }));
    expect((await failure(unconfigured.void(RESERVATION.id))).code).toBe('BILLING_UNAVAILABLE');
  });
});
