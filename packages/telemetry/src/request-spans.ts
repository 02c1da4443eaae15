import type { IncomingMessage } from 'node:http';
import { withServerSpan } from './tracing.js';

interface TracedRequest {
  req: IncomingMessage;
  /** `POST /graphql`, or a prefix family such as `/api/*`. */
  route: string;
  correlationId: string;
}

/**
 * The HTTP server's per-request wrapper when tracing is on: one SERVER span
 * per request, continuing the caller's W3C trace, named by route (never by
 * raw path, which would make every id its own span name).
 */
export function requestSpans(service: string) {
  return <T>(ctx: TracedRequest, run: () => Promise<T>): Promise<T> => {
    const name = ctx.route.includes(' ') ? ctx.route : `${ctx.req.method ?? 'GET'} ${ctx.route}`;
    return withServerSpan(name, ctx.req.headers, { 'aif.service': service, 'http.route': ctx.route, 'correlation.id': ctx.correlationId }, run);
  };
}
