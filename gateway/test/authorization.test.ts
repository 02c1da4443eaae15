import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'graphql-ws';
import { decodeJwt, importJWK, SignJWT } from 'jose';
import WebSocket from 'ws';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { PrincipalEntry } from '@aifactory/authz';
import { parseConfig } from '@aifactory/config';
import { prefixSubject, streamDeclarations } from '@aifactory/contracts';
import { generateAssertionKey, startJwksServer, type AssertionKey, type JwksServer } from '@aifactory/dev-identity';
import { ensureStreams } from '@aifactory/events';
import { createLogger } from '@aifactory/logging';
import { deleteEventStreams, tempKeyDir, TEST_NATS_URL, uniqueEventSubjectPrefix, webSocketWithHeaders, type TempKeys } from '@aifactory/testing';
import { gatewayConfigSchema } from '../src/config.js';
import { startGateway, type RunningGateway } from '../src/server.js';
import { globalPolicy, memberEntry, orgGrant, TestReadModel } from './access-model-fixture.js';

const SUPERGRAPH_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'supergraph.graphql');
const ISSUER = 'https://idp.test';
const AUDIENCE = 'gateway.test';
const WATCH = 'subscription Watch($id: ID!) { organizationUpdated(id: $id) { id name } }';

async function poll<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

describe('gateway authorization from the IAM read model', () => {
  const prefix = uniqueEventSubjectPrefix();
  let keys: TempKeys;
  let assertionKey: AssertionKey;
  let jwks: JwksServer;
  let nc: NatsConnection;
  let model: TestReadModel;
  let iam: Server;
  /** What the fake iam does with a sign-in; undefined answers 503. */
  let answerSignIn: ((body: Record<string, unknown>) => PrincipalEntry) | undefined;
  const signIns: Array<{ body: Record<string, unknown>; token: Record<string, unknown> }> = [];
  let gateway: RunningGateway;

  const assertion = async (subject: string, extra: Record<string, unknown> = {}) =>
    new SignJWT({ email: `${subject}@example.com`, email_verified: true, name: subject, groups: [], ...extra })
      .setProtectedHeader({ alg: assertionKey.alg, kid: assertionKey.kid, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(subject)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(await importJWK(assertionKey.privateJwk, assertionKey.alg));

  const query = async (subject: string, body: unknown = { query: '{ __typename }' }) =>
    fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-pomerium-jwt-assertion': await assertion(subject) },
      body: JSON.stringify(body),
    });
  const codeOf = async (res: Response) => ((await res.json()) as { errors?: Array<{ extensions: { code: string } }> }).errors?.[0]?.extensions.code;

  /** A graphql-ws subscription whose upgrade carries the subject's assertion. */
  const watch = async (subject: string, organizationId: string) => {
    const headers = { 'x-pomerium-jwt-assertion': await assertion(subject) };
    const client = createClient({ url: `${gateway.url.replace('http', 'ws')}/graphql`, webSocketImpl: webSocketWithHeaders(headers), retryAttempts: 0 });
    const results: unknown[] = [];
    const done = new Promise<{ error?: unknown }>((resolve) => {
      client.subscribe(
        { query: WATCH, variables: { id: organizationId } },
        { next: (value) => void results.push(value), error: (error) => resolve({ error }), complete: () => resolve({}) },
      );
    });
    return { client, results, done };
  };

  beforeAll(async () => {
    keys = await tempKeyDir();
    const internal = await keys.ed25519('internal');
    assertionKey = await generateAssertionKey();
    jwks = await startJwksServer([assertionKey]);
    nc = await connect({ servers: TEST_NATS_URL, name: 'gateway-authz-test' });
    await ensureStreams(await jetstreamManager(nc), streamDeclarations({ subjectPrefix: prefix }));
    model = await TestReadModel.open(nc, prefix);
    await model.beat();

    iam = createServer((req, res) => {
      void (async () => {
        const body = (await readJson(req)) as Record<string, unknown>;
        signIns.push({ body, token: decodeJwt((req.headers.authorization ?? '').replace('Bearer ', '')) as Record<string, unknown> });
        if (req.url !== '/api/internal/sign-in' || answerSignIn === undefined) {
          res.writeHead(503).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ principal: answerSignIn(body) }));
      })();
    });
    await new Promise<void>((resolve) => iam.listen(0, '127.0.0.1', resolve));
    const iamUrl = `http://127.0.0.1:${(iam.address() as AddressInfo).port}`;

    const config = parseConfig(gatewayConfigSchema, {
      PORT: '0',
      SUPERGRAPH_FILE,
      SUBGRAPH_URLS: JSON.stringify({ iam: `${iamUrl}/graphql` }),
      POMERIUM_JWKS_URL: jwks.url,
      POMERIUM_ISSUER: ISSUER,
      POMERIUM_AUDIENCE: AUDIENCE,
      INTERNAL_JWT_PRIVATE_KEY_FILE: internal.privateKeyFile,
      API_KEY_PEPPER_FILE: await keys.pepper('api-keys'),
      NATS_URL: TEST_NATS_URL,
      EVENT_SUBJECT_PREFIX: prefix,
      REDIS_KEY_PREFIX: `aif:test:${randomBytes(6).toString('hex')}:`,
      ACCESS_MODEL_MAX_AGE_MS: '30000',
      LOG_LEVEL: 'silent',
    });
    gateway = await startGateway(config, createLogger({ service: 'gateway', level: 'silent' }));
    await gateway.accessModel.whenReady();
  });

  afterAll(async () => {
    await gateway?.close();
    await new Promise<void>((resolve) => (iam ? iam.close(() => resolve()) : resolve()));
    await model?.delete();
    await nc?.close();
    await deleteEventStreams(prefix);
    await jwks?.close();
    await keys?.cleanup();
  });

  it('serves a member the read model knows without asking iam', async () => {
    await model.put(memberEntry({ issuer: ISSUER, subject: 'known', grants: [orgGrant(randomUUID())] }));
    await poll('the entry', () => gateway.accessModel.principal(ISSUER, 'known'));
    const res = await query('known');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { __typename: 'Query' } });
    expect(signIns.filter((call) => call.body.subject === 'known')).toHaveLength(0);
  });

  it('signs a first-time user in through iam once, as the gateway service, with the verified profile', async () => {
    answerSignIn = (body) => memberEntry({ issuer: String(body.issuer), subject: String(body.subject), version: 1 });
    const [first, second] = await Promise.all([query('newcomer'), query('newcomer')]);
    expect([first.status, second.status]).toEqual([200, 200]);
    const calls = signIns.filter((call) => call.body.subject === 'newcomer');
    expect(calls).toHaveLength(1);
    expect(calls[0]?.body).toEqual({ issuer: ISSUER, subject: 'newcomer', email: 'newcomer@example.com', emailVerified: true, name: 'newcomer' });
    expect(calls[0]?.token).toMatchObject({ aud: 'iam', sub: 'gateway', ptype: 'service', roles: [], grants: [] });
    expect(await gateway.metrics.render().then((metrics) => metrics.body)).toMatch(/aif_iam_sign_in_calls_total\{[^}]*outcome="ok"[^}]*\} 1/);
  });

  it('refuses a first-time user with IAM_UNAVAILABLE while iam cannot sign them in', async () => {
    answerSignIn = undefined;
    const res = await query('stranger');
    expect(res.status).toBe(503);
    expect(await codeOf(res)).toBe('IAM_UNAVAILABLE');
  });

  it('takes the per-principal rate limit from the global policy key', async () => {
    await model.publisher.putPolicy(globalPolicy(2, { 'platform.gateway.requests_per_minute': '2' }));
    await poll('the policy', () => (gateway.accessModel.policy(null)?.version === 2 ? true : undefined));
    await model.put(memberEntry({ issuer: ISSUER, subject: 'busy' }));
    await poll('the entry', () => gateway.accessModel.principal(ISSUER, 'busy'));
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await query('busy')).status);
    expect(statuses).toEqual([200, 200, 429]);
    await model.publisher.putPolicy(globalPolicy(3));
    await poll('the policy', () => (gateway.accessModel.policy(null)?.version === 3 ? true : undefined));
  });

  it('gives a member of another organization nothing on organizationUpdated, and audits the refusals once per minute', async () => {
    const watched = randomUUID();
    await model.put(memberEntry({ issuer: ISSUER, subject: 'outsider', grants: [orgGrant(randomUUID(), 'org_admin')] }));
    await poll('the entry', () => gateway.accessModel.principal(ISSUER, 'outsider'));
    const minuteBefore = Math.floor(Date.now() / 60_000);
    const attempts = await Promise.all(Array.from({ length: 20 }, () => watch('outsider', watched)));
    const outcomes = await Promise.all(attempts.map((attempt) => attempt.done));
    for (const [index, outcome] of outcomes.entries()) {
      expect(outcome.error).toEqual([expect.objectContaining({ extensions: expect.objectContaining({ code: 'AUTH_FORBIDDEN' }) })]);
      expect(attempts[index]?.results).toEqual([]);
      await attempts[index]?.client.dispose();
    }
    await gateway.denyAuditor.flush();
    // Coalesced per UTC minute: a run that straddles a minute boundary writes one per minute.
    const minutes = Math.floor(Date.now() / 60_000) - minuteBefore + 1;
    const jsm = await jetstreamManager(nc);
    const subject = prefixSubject('platform.audit.gateway.access.deny', prefix);
    const stream = await jsm.streams.find(subject);
    const info = await jsm.streams.info(stream, { subjects_filter: subject });
    expect(info.state.subjects?.[subject]).toBe(minutes);
    const message = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    const envelope = message?.json<{ payload: Record<string, unknown> }>();
    expect(envelope?.payload).toMatchObject({ action: 'gateway.access.deny', outcome: 'denied', scope: 'platform:organization:read', principal: { type: 'user' } });
  });

  it('ends the subscription of a subscriber removed from the organization', async () => {
    const organizationId = randomUUID();
    const entry = memberEntry({ issuer: ISSUER, subject: 'leaver', grants: [orgGrant(organizationId)] });
    await model.put(entry);
    await poll('the entry', () => gateway.accessModel.principal(ISSUER, 'leaver'));
    const watching = await watch('leaver', organizationId);
    await poll('the subscription to run', () => (gateway.feeds.listeners > 0 ? true : undefined));
    await model.put({ ...entry, grants: [], version: 2 });
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([watching.done, new Promise((resolve) => (timer = setTimeout(() => resolve('still open'), 5_000)))]);
    clearTimeout(timer);
    expect(outcome).toEqual({});
    expect(watching.results).toEqual([{ errors: [expect.objectContaining({ extensions: expect.objectContaining({ code: 'AUTH_FORBIDDEN' }) })] }]);
    await watching.client.dispose();
  });

  it('reports read-model age, key-set age and authorization failures on /metrics', async () => {
    const { body } = await gateway.metrics.render();
    expect(body).toMatch(/^aif_access_model_age_seconds\{[^}]*\} \d/m);
    expect(body).toMatch(/^aif_jwks_age_seconds\{[^}]*\} \d/m);
    expect(body).toMatch(/^aif_access_model_principals\{[^}]*\} [1-9]/m);
    expect(body).toMatch(/aif_authorization_failures_total\{[^}]*code="AUTH_FORBIDDEN"[^}]*\} [1-9]/);
    expect(body).toMatch(/aif_authorization_failures_total\{[^}]*code="IAM_UNAVAILABLE"[^}]*\} [1-9]/);
  });

  it('fails closed with AUTH_READ_MODEL_STALE once iam has not beaten within the budget, and recovers with the next beat', async () => {
    await model.beat(31_000);
    await poll('staleness', () => (gateway.accessModel.isFresh() ? undefined : true));
    const res = await query('known');
    expect(res.status).toBe(503);
    expect(await codeOf(res)).toBe('AUTH_READ_MODEL_STALE');
    const ready = await fetch(`${gateway.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'not_ready', missing: ['access_model'] });
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws', { headers: { 'x-pomerium-jwt-assertion': await assertion('known') } });
    const upgrade = await new Promise<number>((resolve) => {
      socket.on('unexpected-response', (request, response) => {
        resolve(response.statusCode ?? 0);
        request.destroy();
      });
      socket.on('error', () => undefined);
      socket.on('open', () => resolve(101));
    });
    expect(upgrade).toBe(503);

    await model.beat();
    await poll('freshness', () => (gateway.accessModel.isFresh() ? true : undefined));
    expect((await query('known')).status).toBe(200);
  });
});
