import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { AccessModelPublisher } from '@aifactory/access-model';
import { buildCatalogSnapshot } from '@aifactory/authz';
import { loadRegistryData } from '@aifactory/contracts';
import { generateAssertionKey, signAssertion, startJwksServer, type AssertionKey, type JwksServer } from '@aifactory/dev-identity';
import { REPO_ROOT } from '@aifactory/devstack';
import { createLogger } from '@aifactory/logging';
import { InternalTokenSigner, loadSigningKey, type Principal } from '@aifactory/service-auth';
import {
  deleteRedisKeys,
  createTestDatabase,
  deleteEventStreams,
  tempKeyDir,
  TEST_NATS_URL,
  TEST_REDIS_URL,
  uniqueEventSubjectPrefix,
  type TempKeys,
  type TestDatabase,
} from '@aifactory/testing';
import { connect } from '@nats-io/transport-node';
import { eventually } from './support/eventually.js';

interface Exited {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runNode(entry: string, env: Record<string, string>, onLine?: (line: string) => void) {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, entry)], { env: { PATH: process.env.PATH ?? '', ...env } });
  let stdout = '';
  let stderr = '';
  createInterface({ input: child.stdout }).on('line', (line) => {
    stdout += `${line}\n`;
    onLine?.(line);
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<Exited>((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
  return { child, exited };
}

interface Deferred<T = void> {
  promise: Promise<T>;
  resolve: (value: T) => void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

function readAll(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The `code` of a failed fetch's cause (`ECONNREFUSED`), or undefined when it did not fail. */
async function fetchFailure(url: string): Promise<string | undefined> {
  try {
    await fetch(url);
    return undefined;
  } catch (error) {
    return (error as { cause?: { code?: string } }).cause?.code ?? String(error);
  }
}

/** The URL a service process logs once it listens; fails with its stderr if it exits first. */
function listeningUrl(service: ReturnType<typeof runNode>, found: Deferred<string>): Promise<string> {
  const exitedEarly = service.exited.then(({ code, stderr }) => {
    throw new Error(`exited with ${code} before listening: ${stderr}`);
  });
  return Promise.race([found.promise, exitedEarly]);
}

/** A runNode line handler that resolves `found` with the URL of the service's `<kind> listening` line. */
function onListening(message: string, found: Deferred<string>): (line: string) => void {
  return (line) => {
    if (!line.includes(message)) return;
    const parsed = JSON.parse(line) as { msg?: string; url?: string };
    if (parsed.msg === message && parsed.url) found.resolve(parsed.url);
  };
}

type ServiceLogLine = { msg: string; path?: string; status?: number };

/** Seed 004's order in a service's own log: stop taking requests, finish the in-flight one, drain NATS, then exit. */
function expectShutdownInOrder(stdout: string): void {
  const lines = stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ServiceLogLine);
  const at = (found: (line: ServiceLogLine) => boolean) => lines.findIndex(found);
  const shuttingDown = at((line) => line.msg === 'shutting down');
  const slowAnswered = at((line) => line.msg === 'request' && line.path === '/graphql' && line.status === 200);
  const natsClosed = at((line) => line.msg === 'nats connection closed');
  const complete = at((line) => line.msg === 'shutdown complete');
  expect(shuttingDown).toBeGreaterThanOrEqual(0);
  expect(slowAnswered).toBeGreaterThan(shuttingDown);
  expect(natsClosed).toBeGreaterThan(slowAnswered);
  expect(complete).toBeGreaterThan(natsClosed);
}

/** How long the slow request takes: far beyond the moment of SIGTERM, well within SHUTDOWN_GRACE_MS. */
const SLOW_REQUEST_MS = 1_500;

/** Resolves once `ms` have passed since `startedAt` (a performance.now() reading). */
function untilElapsed(startedAt: number, ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, startedAt + ms - performance.now())));
}

const SUPERGRAPH_SUBGRAPHS = ['appplatform', 'billing', 'evidence', 'gpuaas', 'iam', 'tokenfactory'];
const ISSUER = 'https://authenticate.processes.localhost';
const AUDIENCE = 'aifactory.processes.localhost';
const SLOW_USER = { subject: 'slow-user', email: 'slow@example.com' };

/**
 * Plays iam's part in the read model, in this run's own bucket: the gateway is
 * ready only while the model is fresh, and it knows the slow user already
 * (same profile as the assertion), so it has no reason to call iam's sign-in.
 */
async function publishReadModel(subjectPrefix: string): Promise<void> {
  const nc = await connect({ servers: TEST_NATS_URL, name: 'processes-test-iam' });
  try {
    const publisher = await AccessModelPublisher.open({ nc, subjectPrefix, logger: createLogger({ service: 'iam', level: 'silent' }) });
    const registry = loadRegistryData();
    const now = new Date().toISOString();
    const catalog = buildCatalogSnapshot({ scopes: registry.scopes, roles: registry.roles, registryVersions: { scopes: 1, roles: 1 }, publishedAt: now });
    await publisher.putCatalog(catalog);
    await publisher.putPrincipal({
      userId: randomUUID(),
      issuer: ISSUER,
      subject: SLOW_USER.subject,
      email: SLOW_USER.email,
      emailVerified: true,
      name: SLOW_USER.email,
      platformRoles: ['platform_admin'],
      grants: [],
      version: 1,
      updatedAt: now,
    });
    // One beat is fresh for the gateway's whole budget (ACCESS_MODEL_MAX_AGE_MS, 60 s), longer than this test.
    await publisher.heartbeat({ at: now, catalogVersion: catalog.version, policyVersion: 0 });
  } finally {
    await nc.close();
  }
}

describe('service processes', () => {
  it('stops the gateway at start with the names of missing variables', async () => {
    const { code, stderr } = await runNode('gateway/dist/main.js', {}).exited;
    expect(code).toBe(1);
    expect(stderr).toContain('POMERIUM_JWKS_URL');
    expect(stderr).toContain('POMERIUM_ISSUER');
    expect(stderr).toContain('INTERNAL_JWT_PRIVATE_KEY_FILE');
  });

  it('stops a subgraph at start with the name of a bad variable', async () => {
    const { code, stderr } = await runNode('subgraphs/billing/dist/main.js', {
      PORT: 'eighty',
      DATABASE_URL: 'postgresql://x@127.0.0.1:5432/x',
      INTERNAL_JWT_PUBLIC_KEY_FILES: '/nonexistent.pem',
      DB_POOL_SIZE: '0',
    }).exited;
    expect(code).toBe(1);
    expect(stderr).toMatch(/PORT: /);
    expect(stderr).toMatch(/DB_POOL_SIZE: /);
  });

  describe('a running subgraph', () => {
    let db: TestDatabase;
    let keys: TempKeys;
    // The subgraph declares its event streams at start: under this run's prefix, deleted afterwards.
    const eventSubjectPrefix = uniqueEventSubjectPrefix();
    beforeAll(async () => {
      db = await createTestDatabase({ subgraphs: ['iam'] });
      keys = await tempKeyDir();
    });
    afterAll(async () => {
      await keys?.cleanup();
      await db?.drop();
      await deleteEventStreams(eventSubjectPrefix);
    });

    it('shuts down cleanly on SIGTERM', async () => {
      const files = await keys.ed25519('internal');
      let listening: () => void;
      const started = new Promise<void>((resolve) => (listening = resolve));
      const iam = runNode(
        'subgraphs/iam/dist/main.js',
        {
          PORT: '0',
          DATABASE_URL: db.appUrl('iam'),
          DB_POOL_SIZE: '1',
          INTERNAL_JWT_PUBLIC_KEY_FILES: files.publicKeyFile,
          API_KEY_PEPPER_FILE: await keys.pepper('iam'),
          EVENT_SUBJECT_PREFIX: eventSubjectPrefix,
        },
        (line) => line.includes('subgraph listening') && listening(),
      );
      await started;
      iam.child.kill('SIGTERM');
      const { code, stdout } = await iam.exited;
      expect(code).toBe(0);
      const lines = stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { level: string; msg: string });
      expect(lines.map((line) => line.msg)).toEqual(expect.arrayContaining(['shutting down', 'shutdown complete']));
      // iam's read model (heartbeat, projection consumer, KV watch) stops before NATS drains, so nothing fails on the way out.
      expect(lines.filter((line) => line.level === 'error' || line.level === 'fatal')).toEqual([]);
    });

    it('SIGTERM during a slow request: refuses new connections, finishes the request, drains NATS and exits 0', async () => {
      const files = await keys.ed25519('iam-slow');
      const signer = new InternalTokenSigner({ issuer: 'gateway', key: await loadSigningKey(files.privateKeyFile) });
      const admin: Principal = { type: 'user', subject: 'admin-1', platformRoles: ['platform_admin'], grants: [] };
      const listening = deferred<string>();
      const iam = runNode(
        'subgraphs/iam/dist/main.js',
        {
          PORT: '0',
          DATABASE_URL: db.appUrl('iam'),
          DB_POOL_SIZE: '2',
          INTERNAL_JWT_PUBLIC_KEY_FILES: files.publicKeyFile,
          API_KEY_PEPPER_FILE: await keys.pepper('iam-slow'),
          SHUTDOWN_GRACE_MS: '10000',
          EVENT_SUBJECT_PREFIX: eventSubjectPrefix,
        },
        onListening('subgraph listening', listening),
      );
      // An exclusive lock on the table holds the organizations query in Postgres for as long as this test wants.
      const holder = await db.admin();
      const observer = await db.admin();
      let holding = false;
      try {
        const url = await listeningUrl(iam, listening);
        await holder.query('BEGIN');
        await holder.query('LOCK TABLE iam.organizations IN ACCESS EXCLUSIVE MODE');
        holding = true;
        let slowSettled = false;
        const slow = fetch(`${url}/graphql`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${await signer.mint({ audience: 'iam', principal: admin, correlationId: 'slow-iam-0001' })}`,
          },
          body: JSON.stringify({ query: '{ organizations { edges { node { id } } } }' }),
        }).then(async (res) => ({ status: res.status, body: (await res.json()) as unknown }));
        const settled = () => (slowSettled = true);
        void slow.then(settled, settled);
        const waiting = async () =>
          (await observer.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")).rows[0].n;
        await eventually(async () => expect(await waiting()).toBe(1), 10_000);
        const heldSince = performance.now();

        iam.child.kill('SIGTERM');
        await eventually(async () => expect(await fetchFailure(`${url}/healthz`)).toBe('ECONNREFUSED'), 5_000);
        expect(slowSettled).toBe(false);

        await untilElapsed(heldSince, SLOW_REQUEST_MS);
        await holder.query('COMMIT');
        holding = false;
        expect(await slow).toEqual({ status: 200, body: { data: { organizations: { edges: [] } } } });
        const { code, stdout } = await iam.exited;
        expect(code).toBe(0);
        expectShutdownInOrder(stdout);
      } finally {
        if (holding) await holder.query('ROLLBACK');
        if (iam.child.exitCode === null) iam.child.kill('SIGKILL');
      }
    });
  });

  describe('a running gateway', () => {
    let keys: TempKeys;
    let assertionKey: AssertionKey;
    let jwks: JwksServer;
    let subgraph: Server;
    let subgraphUrl: string;
    /** Resolved by the fake subgraph when the slow query reached it. */
    let queryArrived: Deferred;
    /** The fake subgraph answers SLOW_REQUEST_MS after the query arrived, and not before the test releases it. */
    let releaseAnswer: Deferred;
    const redisKeyPrefix = `aif:test:${randomBytes(6).toString('hex')}:`;
    // The read model's bucket and the streams the gateway declares (its audit of denies), deleted afterwards.
    const eventSubjectPrefix = uniqueEventSubjectPrefix();

    beforeAll(async () => {
      await publishReadModel(eventSubjectPrefix);
      keys = await tempKeyDir();
      assertionKey = await generateAssertionKey();
      jwks = await startJwksServer([assertionKey]);
      subgraph = createServer((req, res) => {
        void readAll(req).then(async (body) => {
          if (req.url !== '/graphql' || !body.includes('organizations')) {
            res.writeHead(404).end();
            return;
          }
          const arrivedAt = performance.now();
          queryArrived.resolve();
          await Promise.all([releaseAnswer.promise, untilElapsed(arrivedAt, SLOW_REQUEST_MS)]);
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"data":{"organizations":{"edges":[]}}}');
        });
      });
      await new Promise<void>((resolve) => subgraph.listen(0, '127.0.0.1', resolve));
      subgraphUrl = `http://127.0.0.1:${(subgraph.address() as AddressInfo).port}/graphql`;
    });
    afterAll(async () => {
      releaseAnswer?.resolve();
      subgraph?.closeAllConnections();
      await new Promise<void>((resolve) => (subgraph ? subgraph.close(() => resolve()) : resolve()));
      await jwks?.close();
      await keys?.cleanup();
      await deleteRedisKeys(redisKeyPrefix);
      await deleteEventStreams(eventSubjectPrefix);
    });

    it('SIGTERM during a slow request: refuses new connections, finishes the request, drains NATS and exits 0', async () => {
      queryArrived = deferred();
      releaseAnswer = deferred();
      const files = await keys.ed25519('gateway-internal');
      const listening = deferred<string>();
      const gateway = runNode(
        'gateway/dist/main.js',
        {
          PORT: '0',
          LOG_LEVEL: 'info',
          POMERIUM_JWKS_URL: jwks.url,
          POMERIUM_ISSUER: ISSUER,
          POMERIUM_AUDIENCE: AUDIENCE,
          INTERNAL_JWT_PRIVATE_KEY_FILE: files.privateKeyFile,
          API_KEY_PEPPER_FILE: await keys.pepper('gateway'),
          SUPERGRAPH_FILE: path.join(REPO_ROOT, 'supergraph.graphql'),
          SUBGRAPH_URLS: JSON.stringify(Object.fromEntries(SUPERGRAPH_SUBGRAPHS.map((name) => [name, subgraphUrl]))),
          REDIS_URL: TEST_REDIS_URL,
          REDIS_KEY_PREFIX: redisKeyPrefix,
          EVENT_SUBJECT_PREFIX: eventSubjectPrefix,
          SHUTDOWN_GRACE_MS: '10000',
        },
        onListening('gateway listening', listening),
      );
      try {
        const url = await listeningUrl(gateway, listening);
        // The gateway listens before its first JWKS fetch is done; ready means it can judge assertions and knows who holds what.
        await eventually(async () => expect((await fetch(`${url}/readyz`)).status).toBe(200), 10_000);

        const assertion = await signAssertion(assertionKey, { issuer: ISSUER, audience: AUDIENCE, ...SLOW_USER });
        let slowSettled = false;
        const slow = fetch(`${url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-pomerium-jwt-assertion': assertion },
          body: JSON.stringify({ query: '{ organizations { edges { node { id } } } }' }),
        }).then(async (res) => ({ status: res.status, body: (await res.json()) as unknown }));
        const settled = () => (slowSettled = true);
        void slow.then(settled, settled);
        await queryArrived.promise;

        gateway.child.kill('SIGTERM');
        await eventually(async () => expect(await fetchFailure(`${url}/healthz`)).toBe('ECONNREFUSED'), 5_000);
        expect(slowSettled).toBe(false);

        releaseAnswer.resolve();
        expect(await slow).toEqual({ status: 200, body: { data: { organizations: { edges: [] } } } });
        const { code, stdout } = await gateway.exited;
        expect(code).toBe(0);
        expectShutdownInOrder(stdout);
      } finally {
        releaseAnswer.resolve();
        if (gateway.child.exitCode === null) gateway.child.kill('SIGKILL');
      }
    });
  });
});
