import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'graphql-ws';
import { decodeJwt, importJWK, SignJWT } from 'jose';
import WebSocket from 'ws';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { ApiKeyEntry } from '@aifactory/authz';
import { parseConfig } from '@aifactory/config';
import { organizationUpdatedV1, prefixSubject, streamDeclarations, type EventEnvelope } from '@aifactory/contracts';
import { generateAssertionKey, startJwksServer, type AssertionKey, type JwksServer } from '@aifactory/dev-identity';
import { AppError } from '@aifactory/errors';
import { ensureStreams } from '@aifactory/events';
import { createLogger } from '@aifactory/logging';
import { issueApiKey, newPepperValue, PepperRing, readPepperFile, writePepperFile, type IssuedApiKey } from '@aifactory/service-auth';
import { deleteEventStreams, tempKeyDir, TEST_NATS_URL, uniqueEventSubjectPrefix, webSocketWithHeaders, type TempKeys } from '@aifactory/testing';
import { gatewayConfigSchema } from '../src/config.js';
import { startGateway, type RunningGateway } from '../src/server.js';
import { globalPolicy, memberEntry, orgGrant, TEST_CATALOG, TestReadModel } from './access-model-fixture.js';

const SUPERGRAPH_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'supergraph.graphql');
const ISSUER = 'https://idp.test';
const AUDIENCE = 'gateway.test';
const WATCH = 'subscription Watch($id: ID!) { organizationUpdated(id: $id) { id name } }';
const KEY_MAX_AGE_MS = 3_000;
const FAILURE_LIMIT = 3;

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
  const text = Buffer.concat(chunks).toString('utf8');
  return text === '' ? {} : JSON.parse(text);
}

interface UsageCall {
  body: { uses: Array<{ keyId: string; usedAt: string; rehash?: { pepperVersion: number; hash: string } }> };
  token: Record<string, unknown>;
}

describe('API keys at the gateway', () => {
  const prefix = uniqueEventSubjectPrefix();
  let keys: TempKeys;
  let pepperFile: string;
  let pepper: PepperRing;
  let assertionKey: AssertionKey;
  let jwks: JwksServer;
  let nc: NatsConnection;
  let model: TestReadModel;
  let iam: Server;
  const usage: UsageCall[] = [];
  const forwarded: Array<{ path: string; token: Record<string, unknown> }> = [];
  let gateway: RunningGateway;
  let sources = 0;
  let stopBeating: (() => void) | undefined;
  /** iam beats every 200 ms: the key budget is short, and the tests outlast it. */
  const beatOn = () => model.publisher.startHeartbeat(200, () => ({ at: new Date().toISOString(), catalogVersion: TEST_CATALOG.version, policyVersion: 1 }));

  /** Every test calls from its own address (X-Forwarded-For, one trusted proxy), so failure limits never meet. */
  const newSource = () => `198.51.100.${++sources}`;

  const entryFor = (key: IssuedApiKey, overrides: Partial<ApiKeyEntry> = {}): ApiKeyEntry => ({
    keyId: key.keyId,
    serviceAccountId: randomUUID(),
    organizationId: randomUUID(),
    departmentId: randomUUID(),
    projectId: randomUUID(),
    scopes: ['platform:project:read'],
    status: 'active',
    expiresAt: null,
    graceUntil: null,
    hash: pepper.hash(key.secret, 1),
    pepperVersion: 1,
    registryVersion: 1,
    version: 1,
    updatedAt: new Date().toISOString(),
    ...overrides,
  });
  /** Publishes the entry as iam would and waits until this gateway holds that version. */
  const publish = async (entry: ApiKeyEntry) => {
    await model.putKey(entry);
    await poll(`key ${entry.keyId} v${entry.version}`, () => (gateway.accessModel.apiKey(entry.keyId)?.version === entry.version ? true : undefined));
  };
  const newKey = async (overrides: Partial<ApiKeyEntry> = {}) => {
    const key = issueApiKey('test');
    const entry = entryFor(key, overrides);
    await publish(entry);
    return { key, entry };
  };

  const assertion = async (subject: string) =>
    new SignJWT({ email: `${subject}@example.com`, email_verified: true, name: subject, groups: [] })
      .setProtectedHeader({ alg: assertionKey.alg, kid: assertionKey.kid, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(subject)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(await importJWK(assertionKey.privateJwk, assertionKey.alg));

  const headersFor = (raw: string | undefined, source: string, extra: Record<string, string> = {}) => ({
    'content-type': 'application/json',
    'x-forwarded-for': source,
    ...(raw === undefined ? {} : { authorization: `Bearer ${raw}` }),
    ...extra,
  });
  const query = (raw: string | undefined, source: string, extra: Record<string, string> = {}) =>
    fetch(`${gateway.url}/graphql`, { method: 'POST', headers: headersFor(raw, source, extra), body: JSON.stringify({ query: '{ __typename }' }) });
  const codeOf = async (res: Response) => ((await res.json()) as { errors?: Array<{ extensions: { code: string } }> }).errors?.[0]?.extensions.code ?? 'ok';
  const outcome = async (res: Promise<Response>) => {
    const answer = await res;
    return `${answer.status} ${await codeOf(answer)}`;
  };

  /** A graphql-ws subscription whose upgrade carries the key. */
  const watch = (raw: string, organizationId: string, source: string) => {
    const client = createClient({ url: `${gateway.url.replace('http', 'ws')}/graphql`, webSocketImpl: webSocketWithHeaders(headersFor(raw, source)), retryAttempts: 0 });
    const results: unknown[] = [];
    const done = new Promise<{ error?: unknown }>((resolve) => {
      client.subscribe(
        { query: WATCH, variables: { id: organizationId } },
        { next: (value) => void results.push(value), error: (error) => resolve({ error }), complete: () => resolve({}) },
      );
    });
    return { client, results, done };
  };
  const publishOrganization = async (organizationId: string, name: string, version: number) => {
    const envelope: EventEnvelope = {
      id: randomUUID(),
      type: organizationUpdatedV1.type,
      version: 1,
      occurredAt: new Date().toISOString(),
      correlationId: `key-test-${version}`,
      traceparent: null,
      actor: { type: 'user', id: 'admin-1' },
      organizationId,
      departmentId: null,
      projectId: null,
      registryVersions: {},
      aggregateType: 'organization',
      aggregateId: organizationId,
      aggregateVersion: version,
      payload: { id: organizationId, slug: 'demo', name, billingCurrency: 'USD', status: 'active' },
    };
    await jetstream(nc).publish(prefixSubject(organizationUpdatedV1.subject, prefix), JSON.stringify(envelope), { msgID: envelope.id });
  };
  const settle = <T>(done: Promise<T>, ms = 5_000) => {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([done, new Promise<'still open'>((resolve) => (timer = setTimeout(() => resolve('still open'), ms)))]).finally(() => clearTimeout(timer));
  };

  beforeAll(async () => {
    keys = await tempKeyDir();
    const internal = await keys.ed25519('internal');
    pepperFile = await keys.pepper('api-keys');
    pepper = await PepperRing.load(pepperFile, { reloadEveryMs: 0 });
    assertionKey = await generateAssertionKey();
    jwks = await startJwksServer([assertionKey]);
    nc = await connect({ servers: TEST_NATS_URL, name: 'gateway-api-keys-test' });
    await ensureStreams(await jetstreamManager(nc), streamDeclarations({ subjectPrefix: prefix }));
    model = await TestReadModel.open(nc, prefix);
    stopBeating = beatOn();

    iam = createServer((req, res) => {
      void (async () => {
        const token = decodeJwt((req.headers.authorization ?? '').replace('Bearer ', '')) as Record<string, unknown>;
        const body = await readJson(req);
        if (req.url === '/api/internal/api-keys/usage') {
          usage.push({ body: body as UsageCall['body'], token });
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ updated: (body as UsageCall['body']).uses.length }));
          return;
        }
        if (req.url?.startsWith('/api/')) {
          forwarded.push({ path: req.url, token });
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
          return;
        }
        res.writeHead(503).end();
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
      API_KEY_PEPPER_FILE: pepperFile,
      API_KEY_PEPPER_RELOAD_MS: '100',
      API_KEY_MODEL_MAX_AGE_MS: String(KEY_MAX_AGE_MS),
      // An hour-long window, so no test straddles its boundary.
      API_KEY_FAILURE_LIMIT: JSON.stringify({ limit: FAILURE_LIMIT, windowSeconds: 3_600 }),
      API_KEY_USAGE_FLUSH_MS: '100',
      TRUSTED_PROXY_HOPS: '1',
      NATS_URL: TEST_NATS_URL,
      EVENT_SUBJECT_PREFIX: prefix,
      REDIS_KEY_PREFIX: `aif:test:${randomBytes(6).toString('hex')}:`,
      ACCESS_MODEL_MAX_AGE_MS: '30000',
      LOG_LEVEL: 'silent',
    });
    gateway = await startGateway(config, createLogger({ service: 'gateway', level: 'silent' }), {
      // organizationUpdated is an organization-level scope no key can hold on a project; here a key may watch when it holds the scope at all.
      authorizeSubscription: (principal, request) =>
        principal.scopes?.includes(request.source.scope) ? undefined : new AppError('AUTH_FORBIDDEN', 'You may not watch this'),
    });
    await gateway.accessModel.whenReady();
  });

  afterAll(async () => {
    stopBeating?.();
    await gateway?.close();
    pepper?.close();
    await new Promise<void>((resolve) => (iam ? iam.close(() => resolve()) : resolve()));
    await model?.delete();
    await nc?.close();
    await deleteEventStreams(prefix);
    await jwks?.close();
    await keys?.cleanup();
  });

  it("serves a key as its service account, alone deciding the principal even beside a person's assertion", async () => {
    const { key, entry } = await newKey();
    await model.put(memberEntry({ issuer: ISSUER, subject: 'bystander', grants: [orgGrant(randomUUID(), 'org_admin')] }));
    await poll('the member', () => gateway.accessModel.principal(ISSUER, 'bystander'));
    const source = newSource();
    expect(await outcome(query(key.raw, source))).toBe('200 ok');
    const res = await fetch(`${gateway.url}/api/iam/whoami`, { headers: headersFor(key.raw, source, { 'x-pomerium-jwt-assertion': await assertion('bystander') }) });
    expect(res.status).toBe(200);
    expect(forwarded.at(-1)?.token).toMatchObject({
      aud: 'iam',
      ptype: 'service_account',
      sub: entry.serviceAccountId,
      akid: entry.keyId,
      proj: entry.projectId,
      scopes: ['platform:project:read'],
      roles: [],
      grants: [],
    });
    // A bad key beside a good assertion is still refused: the person's identity does not step in.
    const forged = issueApiKey('test', key.keyId);
    expect(await outcome(query(forged.raw, newSource(), { 'x-pomerium-jwt-assertion': await assertion('bystander') }))).toBe('401 AUTH_API_KEY_UNKNOWN');
  });

  it('reports a real key id with a wrong secret unknown, not revoked; the secret holder learns it was revoked', async () => {
    const { key } = await newKey({ status: 'revoked' });
    const forged = issueApiKey('test', key.keyId);
    expect(await outcome(query(forged.raw, newSource()))).toBe('401 AUTH_API_KEY_UNKNOWN');
    expect(await outcome(query(key.raw, newSource()))).toBe('401 AUTH_API_KEY_REVOKED');
    expect(await outcome(query('aif_test_not_a_key', newSource()))).toBe('401 AUTH_API_KEY_UNKNOWN');
  });

  it('stops a key as soon as its revocation reaches the read model', async () => {
    const { key, entry } = await newKey();
    const source = newSource();
    expect(await outcome(query(key.raw, source))).toBe('200 ok');
    await model.putKey({ ...entry, status: 'revoked', version: 2 });
    await poll('the revocation to apply', async () => ((await outcome(query(key.raw, source))) === '401 AUTH_API_KEY_REVOKED' ? true : undefined), 5_000);
  });

  it('stops a key at its expiry, the old key of a rotation after its grace, and a key of an archived project', async () => {
    const soon = new Date(Date.now() + 1_500).toISOString();
    const expiring = await newKey({ expiresAt: soon });
    const rotated = await newKey({ graceUntil: soon });
    const archived = await newKey({ status: 'project_archived' });
    const source = newSource();
    expect(await outcome(query(expiring.key.raw, source))).toBe('200 ok');
    expect(await outcome(query(rotated.key.raw, source))).toBe('200 ok');
    expect(await outcome(query(archived.key.raw, source))).toBe('401 AUTH_API_KEY_SUSPENDED');
    await new Promise((resolve) => setTimeout(resolve, Date.parse(soon) - Date.now() + 10));
    expect(await outcome(query(expiring.key.raw, newSource()))).toBe('401 AUTH_API_KEY_EXPIRED');
    expect(await outcome(query(rotated.key.raw, newSource()))).toBe('401 AUTH_API_KEY_ROTATED_OUT');
  });

  it('refuses a source after too many failures with 429 and Retry-After, even its good key, and leaves other sources alone', async () => {
    const { key } = await newKey();
    const source = newSource();
    const outcomes = [];
    for (let i = 0; i <= FAILURE_LIMIT; i++) outcomes.push(await outcome(query(issueApiKey('test').raw, source)));
    expect(outcomes).toEqual([...Array<string>(FAILURE_LIMIT).fill('401 AUTH_API_KEY_UNKNOWN'), '429 AUTH_TOO_MANY_FAILURES']);
    const blocked = await query(key.raw, source);
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await outcome(query(key.raw, newSource()))).toBe('200 ok');
  });

  it('audits refused keys once per key, reason and minute, naming the organization only when the secret verified', async () => {
    const { key, entry } = await newKey({ status: 'revoked' });
    const forged = issueApiKey('test', key.keyId);
    const minuteBefore = Math.floor(Date.now() / 60_000);
    for (let i = 0; i < 3; i++) await query(key.raw, newSource());
    await query(forged.raw, newSource());
    await gateway.apiKeyAuditor.flush();
    const jsm = await jetstreamManager(nc);
    const subject = prefixSubject('platform.audit.gateway.api_key.refuse', prefix);
    const stream = await jsm.streams.find(subject);
    const events: EventEnvelope[] = [];
    const info = await jsm.streams.info(stream);
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const message = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
      if (message?.subject === subject) events.push(message.json<EventEnvelope>());
    }
    const mine = events.filter((event) => (event.payload.details as { keyId?: string }).keyId === key.keyId);
    // Coalesced per UTC minute: a run that straddles a minute boundary writes one per minute.
    const minutes = Math.floor(Date.now() / 60_000) - minuteBefore + 1;
    expect(new Set(mine.map((event) => event.payload.reason))).toEqual(new Set(['revoked', 'unknown']));
    expect(mine.filter((event) => event.payload.reason === 'revoked').length).toBeLessThanOrEqual(minutes);
    expect(mine.find((event) => event.payload.reason === 'revoked')).toMatchObject({
      organizationId: entry.organizationId,
      projectId: entry.projectId,
      actor: { type: 'service_account', id: entry.serviceAccountId },
    });
    expect(mine.find((event) => event.payload.reason === 'unknown')).toMatchObject({ organizationId: null, projectId: null, actor: { type: 'system' } });
    expect(JSON.stringify(events)).not.toContain(key.secret.slice(0, 16));
  });

  it("limits requests per key, so two keys of one service account have budgets of their own", async () => {
    const first = await newKey();
    const second = await newKey({ serviceAccountId: first.entry.serviceAccountId, projectId: first.entry.projectId });
    await model.publisher.putPolicy(globalPolicy(2, { 'platform.gateway.requests_per_minute': '2' }));
    await poll('the policy', () => (gateway.accessModel.policy(null)?.version === 2 ? true : undefined));
    try {
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await query(first.key.raw, newSource())).status);
      expect(statuses).toEqual([200, 200, 429]);
      expect((await query(second.key.raw, newSource())).status).toBe(200);
    } finally {
      await model.publisher.putPolicy(globalPolicy(3));
      await poll('the policy', () => (gateway.accessModel.policy(null)?.version === 3 ? true : undefined));
    }
  });

  it('tells iam of last use at most once a minute per key, as the gateway service', async () => {
    const { key } = await newKey();
    for (let i = 0; i < 5; i++) expect((await query(key.raw, newSource())).status).toBe(200);
    await poll('the usage report', () => (usage.some((call) => call.body.uses.some((use) => use.keyId === key.keyId)) ? true : undefined));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const lines = usage.flatMap((call) => call.body.uses).filter((use) => use.keyId === key.keyId);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.rehash).toBeUndefined();
    expect(usage[0]?.token).toMatchObject({ aud: 'iam', sub: 'gateway', ptype: 'service' });
  });

  it('fails key requests closed past the key budget while people are still served, and recovers with the next beat', async () => {
    const { key } = await newKey();
    await model.put(memberEntry({ issuer: ISSUER, subject: 'person', grants: [orgGrant(randomUUID())] }));
    await poll('the member', () => gateway.accessModel.principal(ISSUER, 'person'));
    stopBeating?.();
    // Let a beat still in flight land before the old one.
    await new Promise((resolve) => setTimeout(resolve, 100));
    await model.beat(KEY_MAX_AGE_MS + 1_000);
    await poll('key staleness', () => ((gateway.accessModel.ageMs() ?? 0) > KEY_MAX_AGE_MS ? true : undefined));
    try {
      expect(await outcome(query(key.raw, newSource()))).toBe('503 AUTH_READ_MODEL_STALE');
      expect(await outcome(query(undefined, newSource(), { 'x-pomerium-jwt-assertion': await assertion('person') }))).toBe('200 ok');
    } finally {
      stopBeating = beatOn();
    }
    await poll('freshness', () => ((gateway.accessModel.ageMs() ?? Infinity) < KEY_MAX_AGE_MS ? true : undefined));
    expect(await outcome(query(key.raw, newSource()))).toBe('200 ok');
  });

  it('serves a key its subscription like a person, and ends it with AUTH_API_KEY_REVOKED when the key is revoked', async () => {
    const organizationId = randomUUID();
    const { key, entry } = await newKey({ scopes: ['platform:organization:read'] });
    const watching = watch(key.raw, organizationId, newSource());
    await poll('the subscription to run', () => (gateway.feeds.listeners > 0 ? true : undefined));
    await publishOrganization(organizationId, 'Watched By A Key', 2);
    await poll('the event', () => (watching.results.length > 0 ? true : undefined));
    expect(watching.results[0]).toEqual({ data: { organizationUpdated: { id: organizationId, name: 'Watched By A Key' } } });
    await model.putKey({ ...entry, status: 'revoked', version: 2 });
    expect(await settle(watching.done)).toEqual({});
    expect(watching.results[1]).toEqual({ errors: [expect.objectContaining({ extensions: expect.objectContaining({ code: 'AUTH_API_KEY_REVOKED' }) })] });
    await watching.client.dispose();
    await poll('the subscription to end', () => (gateway.feeds.listeners === 0 ? true : undefined));
  });

  it("ends a key's subscription when its scopes no longer allow it, and at its expiry", async () => {
    const { key, entry } = await newKey({ scopes: ['platform:organization:read'] });
    const rescoped = watch(key.raw, randomUUID(), newSource());
    await poll('the subscription to run', () => (gateway.feeds.listeners > 0 ? true : undefined));
    await model.putKey({ ...entry, scopes: [], version: 2 });
    expect(await settle(rescoped.done)).toEqual({});
    expect(rescoped.results).toEqual([{ errors: [expect.objectContaining({ extensions: expect.objectContaining({ code: 'AUTH_FORBIDDEN' }) })] }]);
    await rescoped.client.dispose();
    await poll('the subscription to end', () => (gateway.feeds.listeners === 0 ? true : undefined));

    const expiring = await newKey({ scopes: ['platform:organization:read'], expiresAt: new Date(Date.now() + 1_500).toISOString() });
    const watchingUntilExpiry = watch(expiring.key.raw, randomUUID(), newSource());
    await poll('the subscription to run', () => (gateway.feeds.listeners > 0 ? true : undefined));
    expect(await settle(watchingUntilExpiry.done)).toEqual({});
    expect(watchingUntilExpiry.results).toEqual([{ errors: [expect.objectContaining({ extensions: expect.objectContaining({ code: 'AUTH_API_KEY_EXPIRED' }) })] }]);
    await watchingUntilExpiry.client.dispose();
  });

  it('takes the key again in connection_init, and refuses a connection that swaps it for another key', async () => {
    const { key } = await newKey({ scopes: ['platform:organization:read'] });
    const other = await newKey({ scopes: ['platform:organization:read'] });
    const source = newSource();
    const connectWith = (params: Record<string, unknown>) => {
      let closeCode: number | undefined;
      const client = createClient({
        url: `${gateway.url.replace('http', 'ws')}/graphql`,
        webSocketImpl: webSocketWithHeaders(headersFor(key.raw, source)),
        retryAttempts: 0,
        connectionParams: params,
        on: { closed: (event) => void (closeCode = (event as { code: number }).code) },
      });
      const done = new Promise<{ error?: unknown; next?: unknown }>((resolve) => {
        client.subscribe({ query: WATCH, variables: { id: randomUUID() } }, { next: (next) => resolve({ next }), error: (error) => resolve({ error }), complete: () => resolve({}) });
      });
      return { client, done, closeCode: () => closeCode };
    };
    const same = connectWith({ authorization: `Bearer ${key.raw}` });
    await poll('the subscription to run', () => (gateway.feeds.listeners > 0 ? true : undefined));
    await same.client.dispose();
    await poll('the subscription to end', () => (gateway.feeds.listeners === 0 ? true : undefined));

    const swapped = connectWith({ authorization: `Bearer ${other.key.raw}` });
    await swapped.done;
    expect(swapped.closeCode()).toBe(4403);
    await swapped.client.dispose();
  });

  it('refuses the upgrade of a subscription with a refused key', async () => {
    const { key } = await newKey({ status: 'revoked' });
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws', { headers: headersFor(key.raw, newSource()) });
    const status = await new Promise<number>((resolve) => {
      socket.on('unexpected-response', (request, response) => {
        resolve(response.statusCode ?? 0);
        request.destroy();
      });
      socket.on('error', () => undefined);
      socket.on('open', () => resolve(101));
    });
    expect(status).toBe(401);
  });

  it('hands iam a re-hash under the new pepper at the next use after a rotation', async () => {
    const { key } = await newKey();
    const file = await readPepperFile(pepperFile);
    const newer = newPepperValue();
    await writePepperFile(pepperFile, { current: 2, versions: { ...file.versions, '2': newer } });
    await pepper.reload();
    // The gateway re-reads the file on its own (every 100 ms here).
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await query(key.raw, newSource())).status).toBe(200);
    const line = await poll('the re-hash', () => usage.flatMap((call) => call.body.uses).find((use) => use.keyId === key.keyId));
    expect(line.rehash).toEqual({ pepperVersion: 2, hash: pepper.hash(key.secret, 2) });
  });

  it('reports key refusals by reason, keys loaded, and key refusals among authorization failures on /metrics', async () => {
    const { body } = await gateway.metrics.render();
    for (const reason of ['unknown', 'revoked', 'expired', 'rotated_out', 'suspended', 'stale', 'rate_limited']) {
      expect(body).toMatch(new RegExp(`aif_api_key_validation_failures_total\\{[^}]*reason="${reason}"[^}]*\\} [1-9]`));
    }
    expect(body).toMatch(/aif_api_key_validations_total\{[^}]*outcome="ok"[^}]*\} [1-9]/);
    expect(body).toMatch(/^aif_access_model_api_keys\{[^}]*\} [1-9]/m);
    expect(body).toMatch(/aif_authorization_failures_total\{[^}]*code="AUTH_API_KEY_REVOKED"[^}]*\} [1-9]/);
    expect(body).toMatch(/aif_authorization_failures_total\{[^}]*code="AUTH_TOO_MANY_FAILURES"[^}]*\} [1-9]/);
  });
});
