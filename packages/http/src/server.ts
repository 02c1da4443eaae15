import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AppError, isAppError } from '@aifactory/errors';
import { acceptCorrelationId, runWithCorrelationId, type Logger } from '@aifactory/logging';
import { CORRELATION_HEADER, sendRestError } from './responses.js';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  correlationId: string;
  /** The route key that matched (`POST /graphql`), or the route family a prefix handler names. */
  route: string;
  /** Set by a GraphQL handler: the operation's name, for logs and metrics. */
  operation?: string;
  /**
   * Set by a handler that answered with an error: the request's one log line
   * carries its code, cause class and cause, so every refusal can be traced
   * from the correlation id the client saw.
   */
  failure?: unknown;
  /**
   * Set once the caller is known: who made the request (ids only), so the
   * request's log line is attributable to a person, an API key or a service.
   */
  actor?: RequestActor;
}

export interface RequestActor {
  type: string;
  id: string;
  /** The API key a service account's request came with. */
  keyId?: string;
  /** The party a service acted for (RFC 8693 `sub` of a delegated call). */
  onBehalfOf?: string;
}

/** Records every request: the route, GraphQL operation, outcome (`ok` or an error code) and latency. */
export interface RequestObserver {
  observeRequest(route: string, operation: string, outcome: string, seconds: number): void;
}

export type RouteHandler = (ctx: RequestContext) => Promise<void> | void;

/** Keys are `METHOD /path`; a path with no route for the method answers 405. */
export type Routes = Record<string, RouteHandler>;

/** Routes under a path prefix (`/webhooks/`, `/api/`), for any method the handler accepts. */
export type PrefixRoutes = Record<string, RouteHandler>;

export interface HttpServerOptions {
  logger: Logger;
  routes: Routes;
  prefixRoutes?: PrefixRoutes;
  observer?: RequestObserver;
  /** Wraps each request's handling, e.g. in a tracing span continued from the caller's headers. */
  around?: <T>(ctx: RequestContext, run: () => Promise<T>) => Promise<T>;
  /** How long in-flight requests may run after shutdown starts. */
  shutdownGraceMs: number;
}

function outcomeOf(ctx: RequestContext): { outcome: string; errorClass?: string } {
  const { failure } = ctx;
  if (failure === undefined) return { outcome: ctx.res.statusCode >= 400 ? `HTTP_${ctx.res.statusCode}` : 'ok' };
  if (isAppError(failure)) return { outcome: failure.code, errorClass: failure.errorClass };
  return { outcome: 'INTERNAL_ERROR', errorClass: 'local_defect' };
}

/** The cause chain as type and message only: never a request body, never a header. */
function causeOf(error: unknown): Array<{ type: string; message: string }> {
  const chain: Array<{ type: string; message: string }> = [];
  let current: unknown = error;
  while (current instanceof Error && chain.length < 5) {
    chain.push({ type: current.name, message: current.message });
    current = current.cause;
  }
  return chain;
}

export interface RunningHttpServer {
  server: Server;
  port: number;
  url: string;
  /** Stops accepting (new requests on open connections get 503), resolves once in-flight ones finished or the grace ran out. */
  drain(): Promise<void>;
  /** Drains, then closes every connection left. */
  close(): Promise<void>;
}

export async function startHttpServer(options: HttpServerOptions, port: number, host = '127.0.0.1'): Promise<RunningHttpServer> {
  const { logger, routes } = options;
  const paths = new Set(Object.keys(routes).map((key) => key.slice(key.indexOf(' ') + 1)));
  let inFlight = 0;
  let drained: (() => void) | undefined;

  const prefixes = Object.entries(options.prefixRoutes ?? {});
  let shuttingDown = false;

  const routeFor = (method: string, pathname: string): { route: string; handler?: RouteHandler } => {
    const key = `${method} ${pathname}`;
    const exact = routes[key];
    if (exact) return { route: key, handler: exact };
    for (const [prefix, handler] of prefixes) {
      if (pathname.startsWith(prefix)) return { route: `${prefix}*`, handler };
    }
    return { route: paths.has(pathname) ? pathname : 'unmatched' };
  };

  const server = createServer((req, res) => {
    const correlationId = acceptCorrelationId(req.headers[CORRELATION_HEADER]);
    res.setHeader(CORRELATION_HEADER, correlationId);
    inFlight += 1;
    const startedAt = performance.now();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const { route, handler } = routeFor(req.method ?? 'GET', url.pathname);
    const ctx: RequestContext = { req, res, url, correlationId, route };
    res.on('close', () => {
      inFlight -= 1;
      const seconds = (performance.now() - startedAt) / 1000;
      const { outcome, errorClass } = outcomeOf(ctx);
      options.observer?.observeRequest(route, ctx.operation ?? '-', outcome, seconds);
      runWithCorrelationId(correlationId, () => {
        const line = {
          method: req.method,
          path: url.pathname,
          route,
          status: res.statusCode,
          ms: Math.round(seconds * 1000),
          ...(ctx.operation ? { operation: ctx.operation } : {}),
          ...(ctx.actor ? { actor: ctx.actor } : {}),
          ...(outcome === 'ok' ? {} : { code: outcome }),
          ...(errorClass ? { errorClass, cause: causeOf(ctx.failure) } : {}),
        };
        if (res.statusCode >= 500) logger.error(line, 'request failed');
        else if (outcome !== 'ok') logger.warn(line, 'request refused');
        else logger.info(line, 'request');
      });
      if (inFlight === 0) drained?.();
    });
    runWithCorrelationId(correlationId, () => {
      if (shuttingDown) {
        // A request on a kept-alive connection after shutdown began: refuse it and close the connection.
        res.setHeader('connection', 'close');
        ctx.failure = new AppError('SERVICE_SHUTTING_DOWN', 'The service is shutting down; retry on another instance');
        sendRestError(res, ctx.failure, correlationId);
        return;
      }
      if (!handler) {
        ctx.failure = paths.has(url.pathname)
          ? new AppError('BAD_REQUEST_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}`)
          : new AppError('NOT_FOUND', `No route for ${url.pathname}`);
        sendRestError(res, ctx.failure, correlationId);
        return;
      }
      const run = () => Promise.resolve().then(() => handler(ctx));
      (options.around ? options.around(ctx, run) : run()).catch((error: unknown) => {
        ctx.failure = error;
        if (!res.headersSent) sendRestError(res, error, correlationId);
        else res.destroy();
      });
    });
  });
  server.keepAliveTimeout = 65_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;

  let draining: Promise<void> | undefined;
  let serverClosed: Promise<void> | undefined;
  const drain = (): Promise<void> => {
    draining ??= new Promise<void>((resolveDrained) => {
      shuttingDown = true;
      serverClosed = new Promise<void>((resolveClosed) => server.close(() => resolveClosed()));
      server.closeIdleConnections();
      const finished = inFlight === 0 ? Promise.resolve() : new Promise<void>((r) => (drained = r));
      const grace = new Promise<void>((r) => setTimeout(r, options.shutdownGraceMs).unref());
      void Promise.race([finished, grace]).then(() => {
        if (inFlight > 0) logger.warn({ inFlight }, 'shutdown grace over; closing remaining connections');
        resolveDrained();
      });
    });
    return draining;
  };
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= drain().then(async () => {
      server.closeAllConnections();
      await serverClosed;
    });
    return closing;
  };

  return { server, port: bound, url: `http://${host}:${bound}`, drain, close };
}

/**
 * SIGTERM/SIGINT: stop accepting, finish in-flight work, then release
 * resources (pools) in order, and exit.
 */
export function closeOnSignals(logger: Logger, steps: Array<() => Promise<void>>): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    void (async () => {
      let code = 0;
      for (const step of steps) {
        try {
          await step();
        } catch (error) {
          code = 1;
          logger.error({ err: error }, 'shutdown step failed');
        }
      }
      logger.info('shutdown complete');
      logger.flush();
      process.exit(code);
    })();
  };
  // `on`, not `once`: a supervisor's SIGTERM after a Ctrl-C must not kill a shutdown under way; `stop` ignores repeats.
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
