import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AppError } from '@aifactory/errors';
import { startHttpServer, type RunningHttpServer } from '@aifactory/http';
import { createLogger } from '@aifactory/logging';
import type { Principal } from '@aifactory/service-auth';
import { captureLogs, type CapturedLogs } from '@aifactory/testing';
import { restForwarding, webhookForwarding } from '../src/routes/forwarding.js';

const BODY_LIMIT = 1024;
const TIMEOUT_MS = 1_000;
const VALID_ASSERTION = 'assertion-of-alice';
const alice: Principal = { type: 'user', subject: 'alice', platformRoles: [], grants: [] };

interface UpstreamRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Promise<Buffer>;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Fails fast with a reason instead of hanging until jest's own timeout: a buffering proxy would hang here. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe('gateway forwarding of /webhooks/* and /api/*', () => {
  let upstream: Server;
  let upstreamUrl: string;
  let deadUrl: string;
  let gateway: RunningHttpServer;
  let logs: CapturedLogs;
  let received: UpstreamRequest[];
  /** Per test: what the fake subgraph does with a request under /api/. */
  let answer: (req: IncomingMessage, res: ServerResponse) => void;

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: readAll(req) });
      if (req.url?.startsWith('/webhooks/')) {
        res.writeHead(202, { 'content-type': 'application/json', 'x-subgraph-secret': 'stays-inside' });
        res.end('{"received":true}');
        return;
      }
      answer(req, res);
    });
    upstreamUrl = await listen(upstream);
    const dead = createServer();
    deadUrl = await listen(dead);
    await closeServer(dead);

    logs = captureLogs();
    const baseUrls: Record<string, string> = { billing: upstreamUrl, evidence: upstreamUrl, down: deadUrl };
    const subgraphBaseUrl = (subgraph: string) => (Object.hasOwn(baseUrls, subgraph) ? baseUrls[subgraph] : undefined);
    gateway = await startHttpServer(
      {
        logger: createLogger({ service: 'gateway', level: 'info', destination: logs.destination }),
        routes: {},
        prefixRoutes: {
          '/webhooks/': webhookForwarding({ routes: { stripe: 'billing' }, subgraphBaseUrl, bodyLimitBytes: BODY_LIMIT, timeoutMs: TIMEOUT_MS }),
          '/api/': restForwarding({
            subgraphBaseUrl,
            authenticate: async (ctx) => {
              if (ctx.req.headers['x-pomerium-jwt-assertion'] !== VALID_ASSERTION) {
                throw new AppError('AUTH_UNAUTHENTICATED', 'Sign in first');
              }
              return alice;
            },
            mintToken: async (subgraph, principal, correlationId) => `internal.${subgraph}.${principal.subject}.${correlationId}`,
            timeoutMs: TIMEOUT_MS,
          }),
        },
        shutdownGraceMs: 100,
      },
      0,
    );
  });

  beforeEach(() => {
    received = [];
    answer = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    };
  });

  afterAll(async () => {
    await gateway?.close();
    if (upstream) await closeServer(upstream);
  });

  const signedIn = { 'x-pomerium-jwt-assertion': VALID_ASSERTION };

  async function errorCode(res: Response): Promise<string> {
    return ((await res.json()) as { error: { code: string } }).error.code;
  }

  describe('/webhooks/<provider>', () => {
    it('forwards the raw body byte for byte with the signature header, and relays the answer', async () => {
      const body = Buffer.concat([
        Buffer.from('{"id":"evt_1","note":"line\r\nbreak"}\r\n', 'utf8'),
        Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3]),
        Buffer.from('trailing space ', 'utf8'),
      ]);
      const res = await fetch(`${gateway.url}/webhooks/stripe`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json; charset=utf-8',
          'stripe-signature': 't=1700000000,v1=5257a869e7ec',
          'x-correlation-id': 'webhook-delivery-0001',
        },
        body,
      });

      expect(res.status).toBe(202);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(res.headers.get('x-subgraph-secret')).toBeNull();
      expect(await res.text()).toBe('{"received":true}');
      expect(received).toHaveLength(1);
      const [delivery] = received;
      expect(delivery!.method).toBe('POST');
      expect(delivery!.url).toBe('/webhooks/stripe');
      expect(sha256(await delivery!.body)).toBe(sha256(body));
      expect(delivery!.headers['stripe-signature']).toBe('t=1700000000,v1=5257a869e7ec');
      expect(delivery!.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(delivery!.headers['x-correlation-id']).toBe('webhook-delivery-0001');
    });

    it('passes no credentials on: no authorization, cookie or Pomerium assertion', async () => {
      await fetch(`${gateway.url}/webhooks/stripe`, {
        method: 'POST',
        headers: { authorization: 'Bearer sk_live_x', cookie: 'session=1', 'x-pomerium-jwt-assertion': VALID_ASSERTION, 'x-github-delivery': 'd1' },
        body: '{}',
      });

      const { headers } = received[0]!;
      expect(headers.authorization).toBeUndefined();
      expect(headers.cookie).toBeUndefined();
      expect(headers['x-pomerium-jwt-assertion']).toBeUndefined();
      expect(headers['x-github-delivery']).toBe('d1');
    });

    it('refuses a body over the limit with 413 and forwards nothing', async () => {
      const res = await fetch(`${gateway.url}/webhooks/stripe`, { method: 'POST', body: Buffer.alloc(BODY_LIMIT + 1, 0x61) });

      expect(res.status).toBe(413);
      expect(await errorCode(res)).toBe('BAD_REQUEST_BODY_TOO_LARGE');
      expect(received).toHaveLength(0);
    });

    it('answers 404 for a provider it does not know', async () => {
      const res = await fetch(`${gateway.url}/webhooks/paypal`, { method: 'POST', body: '{}' });

      expect(res.status).toBe(404);
      expect(await errorCode(res)).toBe('NOT_FOUND');
      expect(received).toHaveLength(0);
    });

    it('answers 405 to anything but POST', async () => {
      const res = await fetch(`${gateway.url}/webhooks/stripe`);

      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('POST');
      expect(await errorCode(res)).toBe('BAD_REQUEST_METHOD_NOT_ALLOWED');
      expect(received).toHaveLength(0);
    });
  });

  describe('/api/<subgraph>/...', () => {
    it('refuses a caller without identity with 401, and the subgraph sees nothing', async () => {
      const res = await fetch(`${gateway.url}/api/evidence/audit-events.csv`);

      expect(res.status).toBe(401);
      expect(await errorCode(res)).toBe('AUTH_UNAUTHENTICATED');
      expect(received).toHaveLength(0);
    });

    it('answers 404 for a subgraph it does not know', async () => {
      const res = await fetch(`${gateway.url}/api/nosuch/x`, { headers: signedIn });

      expect(res.status).toBe(404);
      expect(await errorCode(res)).toBe('NOT_FOUND');
    });

    it('forwards method, path and query with the internal token, and none of the client’s credentials', async () => {
      const res = await fetch(`${gateway.url}/api/evidence/audit-events.csv?from=2025-01-01&limit=5`, {
        headers: {
          ...signedIn,
          authorization: 'Bearer client-api-key',
          cookie: '_pomerium=abc; session=1',
          accept: 'text/csv',
          'x-correlation-id': 'rest-export-000001',
          'x-custom': 'client-only',
        },
      });

      expect(res.status).toBe(200);
      expect(await res.text()).toBe('ok');
      const [call] = received;
      expect(call!.method).toBe('GET');
      expect(call!.url).toBe('/api/audit-events.csv?from=2025-01-01&limit=5');
      expect(call!.headers.authorization).toBe('Bearer internal.evidence.alice.rest-export-000001');
      expect(call!.headers['x-correlation-id']).toBe('rest-export-000001');
      expect(call!.headers.accept).toBe('text/csv');
      expect(call!.headers.cookie).toBeUndefined();
      expect(call!.headers['x-pomerium-jwt-assertion']).toBeUndefined();
      expect(call!.headers['x-custom']).toBeUndefined();
    });

    it('streams a request body through to the subgraph', async () => {
      const body = Buffer.from('a,b\r\n1,2\r\n');
      await fetch(`${gateway.url}/api/billing/imports`, { method: 'POST', headers: { ...signedIn, 'content-type': 'text/csv' }, body });

      const [call] = received;
      expect(call!.method).toBe('POST');
      expect(call!.url).toBe('/api/imports');
      expect(call!.headers['content-type']).toBe('text/csv');
      expect(sha256(await call!.body)).toBe(sha256(body));
    });

    it('streams the answer: the first chunk arrives while the subgraph is still writing', async () => {
      const released = deferred();
      let upstreamEnded = false;
      answer = (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/csv', 'content-disposition': 'attachment; filename="x.csv"' });
        res.write('id,action\r\n');
        void released.promise.then(() => {
          res.end('1,created\r\n');
          upstreamEnded = true;
        });
      };

      const res = await within(5_000, 'the response headers', fetch(`${gateway.url}/api/evidence/export.csv`, { headers: signedIn }));
      expect(res.headers.get('content-disposition')).toBe('attachment; filename="x.csv"');
      const reader = res.body!.getReader();
      const first = await within(5_000, 'the first chunk', reader.read());
      expect(new TextDecoder().decode(first.value)).toBe('id,action\r\n');
      expect(upstreamEnded).toBe(false);

      released.resolve();
      let rest = '';
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) rest += new TextDecoder().decode(chunk.value);
      expect(rest).toBe('1,created\r\n');
      expect(upstreamEnded).toBe(true);
    });

    it('aborts the subgraph call when the client goes away mid-stream', async () => {
      const upstreamClosed = deferred();
      answer = (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/csv' });
        res.write('first\r\n');
        res.once('close', () => upstreamClosed.resolve());
      };
      const client = new AbortController();

      const res = await fetch(`${gateway.url}/api/evidence/endless.csv`, { headers: signedIn, signal: client.signal });
      await res.body!.getReader().read();
      client.abort();

      await within(5_000, 'the subgraph call to close', upstreamClosed.promise);
    });

    it('cuts the client’s response when the subgraph breaks off mid-stream, so a truncated export is never taken as whole', async () => {
      answer = (_req, res) => {
        res.writeHead(200, { 'content-type': 'text/csv' });
        res.write('first\r\n', () => setTimeout(() => res.destroy(), 20));
      };

      const res = await fetch(`${gateway.url}/api/evidence/broken.csv`, { headers: signedIn });

      await expect(within(5_000, 'the cut body', res.text())).rejects.toThrow('terminated');
      const correlationId = res.headers.get('x-correlation-id');
      await within(5_000, 'the log line', (async () => {
        while (!logs.lines().some((line) => line.correlationId === correlationId && line.code === 'UPSTREAM_UNAVAILABLE')) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })());
    });

    it('answers 502 UPSTREAM_UNAVAILABLE when the subgraph cannot be reached', async () => {
      const res = await fetch(`${gateway.url}/api/down/audit-events.csv`, { headers: signedIn });

      expect(res.status).toBe(502);
      expect(await errorCode(res)).toBe('UPSTREAM_UNAVAILABLE');
      const correlationId = res.headers.get('x-correlation-id');
      expect(logs.lines().find((line) => line.correlationId === correlationId && line.msg === 'request failed')).toMatchObject({
        status: 502,
        code: 'UPSTREAM_UNAVAILABLE',
      });
    });

    it('answers 504 UPSTREAM_TIMEOUT when the subgraph does not answer in time', async () => {
      const upstreamClosed = deferred();
      answer = (_req, res) => res.once('close', () => upstreamClosed.resolve());

      const res = await fetch(`${gateway.url}/api/evidence/slow`, { headers: signedIn });

      expect(res.status).toBe(504);
      expect(await errorCode(res)).toBe('UPSTREAM_TIMEOUT');
      await within(5_000, 'the abandoned subgraph call to close', upstreamClosed.promise);
    });
  });
});
