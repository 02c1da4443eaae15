import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AppError } from '@aifactory/errors';
import { acceptCorrelationId, runWithCorrelationId, type Logger } from '@aifactory/logging';
import { CORRELATION_HEADER, sendRestError } from './responses.js';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  correlationId: string;
}

export type RouteHandler = (ctx: RequestContext) => Promise<void> | void;

/** Keys are `METHOD /path`; a path with no route for the method answers 405. */
export type Routes = Record<string, RouteHandler>;

export interface HttpServerOptions {
  logger: Logger;
  routes: Routes;
  /** How long in-flight requests may run after shutdown starts. */
  shutdownGraceMs: number;
}

export interface RunningHttpServer {
  server: Server;
  port: number;
  url: string;
  /** Stops accepting, lets in-flight requests finish (up to the grace), then resolves. */
  close(): Promise<void>;
}

export async function startHttpServer(options: HttpServerOptions, port: number, host = '127.0.0.1'): Promise<RunningHttpServer> {
  const { logger, routes } = options;
  const paths = new Set(Object.keys(routes).map((key) => key.slice(key.indexOf(' ') + 1)));
  let inFlight = 0;
  let drained: (() => void) | undefined;

  const server = createServer((req, res) => {
    const correlationId = acceptCorrelationId(req.headers[CORRELATION_HEADER]);
    res.setHeader(CORRELATION_HEADER, correlationId);
    inFlight += 1;
    const startedAt = performance.now();
    res.on('close', () => {
      inFlight -= 1;
      runWithCorrelationId(correlationId, () =>
        logger.info(
          { method: req.method, path: req.url, status: res.statusCode, ms: Math.round(performance.now() - startedAt) },
          'request',
        ),
      );
      if (inFlight === 0) drained?.();
    });
    runWithCorrelationId(correlationId, () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const handler = routes[`${req.method ?? 'GET'} ${url.pathname}`];
      const ctx: RequestContext = { req, res, url, correlationId };
      if (!handler) {
        const error = paths.has(url.pathname)
          ? new AppError('BAD_REQUEST_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}`)
          : new AppError('NOT_FOUND', `No route for ${url.pathname}`);
        sendRestError(res, error, correlationId);
        return;
      }
      Promise.resolve()
        .then(() => handler(ctx))
        .catch((error: unknown) => {
          logger.error({ err: error }, 'request failed');
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

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      const done = new Promise<void>((resolveClosed) => server.close(() => resolveClosed()));
      server.closeIdleConnections();
      const finished = inFlight === 0 ? Promise.resolve() : new Promise<void>((r) => (drained = r));
      const grace = new Promise<void>((r) => setTimeout(r, options.shutdownGraceMs).unref());
      void Promise.race([finished, grace]).then(async () => {
        if (inFlight > 0) logger.warn({ inFlight }, 'shutdown grace over; closing remaining connections');
        server.closeAllConnections();
        await done;
        resolve();
      });
    });
    return closing;
  };

  return { server, port: bound, url: `http://${host}:${bound}`, close };
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
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
