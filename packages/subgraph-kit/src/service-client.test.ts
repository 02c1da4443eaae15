import { generateKeyPairSync } from 'node:crypto';
import { decodeJwt } from 'jose';
import { AppError } from '@aifactory/errors';
import { createLogger } from '@aifactory/logging';
import { keyIdOf, ServiceTokenIssuer, type VerifiedInternalCall } from '@aifactory/service-auth';
import { ServiceClient } from './service-client.js';

interface Sent {
  url: string;
  init: RequestInit;
}

async function client(answer: (sent: Sent) => Promise<Response>, sent: Sent[] = []): Promise<ServiceClient> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const issuer = new ServiceTokenIssuer({ service: 'tokenfactory', key: { kid: await keyIdOf(publicKey), privateKey } });
  return new ServiceClient({
    issuer,
    urls: { billing: 'http://billing.internal:4002' },
    timeoutMs: 50,
    logger: createLogger({ service: 'tokenfactory', level: 'silent' }),
    fetch: (async (url: URL, init: RequestInit) => {
      const call = { url: String(url), init };
      sent.push(call);
      return answer(call);
    }) as typeof fetch,
  });
}

const served: VerifiedInternalCall = {
  principal: { type: 'user', subject: 'https://idp.test|alice', platformRoles: [], grants: [] },
  issuer: 'gateway',
  correlationId: 'corr-served-1',
  actor: undefined,
  credential: 'platform',
};

async function failure(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describe('ServiceClient', () => {
  it('posts to the target with a token for it alone, the correlation id and the caller as the party acted for', async () => {
    const sent: Sent[] = [];
    const services = await client(async () => new Response(JSON.stringify({ data: { ok: true } }), { status: 200 }), sent);
    const answer = await services.graphql('billing', { query: '{ ok }' }, { scopes: ['platform:billing:read'], onBehalfOf: served });
    expect(answer).toEqual({ data: { ok: true } });
    expect(sent[0]!.url).toBe('http://billing.internal:4002/graphql');
    const headers = sent[0]!.init.headers as Record<string, string>;
    expect(headers['x-correlation-id']).toBe('corr-served-1');
    const claims = decodeJwt(headers.authorization!.replace('Bearer ', ''));
    expect(claims).toMatchObject({ iss: 'tokenfactory', aud: 'billing', sub: served.principal.subject, act: { sub: 'tokenfactory' }, scopes: ['platform:billing:read'], cid: 'corr-served-1' });
  });

  it('calls /api routes only, for itself when no caller is given', async () => {
    const sent: Sent[] = [];
    const services = await client(async () => new Response('{}', { status: 202 }), sent);
    const response = await services.request('billing', '/api/internal/reservations', { method: 'POST', body: { amount: '1.00' } }, { scopes: [], correlationId: 'corr-own-0001' });
    expect(response.status).toBe(202);
    expect(sent[0]!.init.body).toBe('{"amount":"1.00"}');
    const claims = decodeJwt((sent[0]!.init.headers as Record<string, string>).authorization!.replace('Bearer ', ''));
    expect(claims.sub).toBe('tokenfactory');
    expect(claims.act).toBeUndefined();
    await expect(services.request('billing', '/graphql', { method: 'GET' }, { scopes: [] })).rejects.toThrow(RangeError);
  });

  it('names the target and its refusal code when the call is refused', async () => {
    const services = await client(
      async () => new Response(JSON.stringify({ errors: [{ message: 'no', extensions: { code: 'INTERNAL_AUTH_SERVICE_DISABLED' } }] }), { status: 401 }),
    );
    const error = await failure(services.graphql('billing', { query: '{ ok }' }, { scopes: [] }));
    expect(error.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(error.details).toEqual({ service: 'billing', status: 401, code: 'INTERNAL_AUTH_SERVICE_DISABLED' });
  });

  it('answers UPSTREAM_TIMEOUT, UPSTREAM_UNAVAILABLE for a silent, unreachable or unknown target', async () => {
    const silent = await client(
      (sent) =>
        new Promise((_resolve, reject) => sent.init.signal!.addEventListener('abort', () => reject(sent.init.signal!.reason), { once: true })),
    );
    expect((await failure(silent.graphql('billing', { query: '{ ok }' }, { scopes: [] }))).code).toBe('UPSTREAM_TIMEOUT');
    const unreachable = await client(async () => {
      throw new TypeError('fetch failed');
    });
    expect((await failure(unreachable.graphql('billing', { query: '{ ok }' }, { scopes: [] }))).code).toBe('UPSTREAM_UNAVAILABLE');
    expect((await failure(unreachable.graphql('iam', { query: '{ ok }' }, { scopes: [] }))).details).toMatchObject({ service: 'iam', reason: 'no SERVICE_URLS entry' });
  });
});
