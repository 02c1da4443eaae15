import { AppError } from '@aifactory/errors';
import type { RequestContext } from '@aifactory/http';

const ALLOWED_METHODS = 'GET, POST, OPTIONS';
const ALLOWED_HEADERS = 'content-type, idempotency-key, x-correlation-id, apollo-require-preflight, x-apollo-operation-name';
const EXPOSED_HEADERS = 'x-correlation-id, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, retry-after, idempotent-replayed';

/**
 * Browsers may call the gateway from its own origin and from the origins in
 * config; a request whose Origin is anything else is refused before it is
 * read. Requests without an Origin (programs, curl) are not browser requests
 * and pass to authentication.
 */
export class CorsPolicy {
  private readonly allowed: ReadonlySet<string>;

  constructor(allowedOrigins: readonly string[]) {
    this.allowed = new Set(allowedOrigins.map((origin) => new URL(origin).origin));
  }

  /** Throws BAD_REQUEST_ORIGIN_NOT_ALLOWED for a foreign origin; adds the CORS answer headers for an allowed one. */
  apply(ctx: RequestContext): void {
    const origin = ctx.req.headers.origin;
    if (origin === undefined || this.isSameOrigin(origin, ctx.req.headers.host)) return;
    if (!this.allowed.has(origin)) {
      throw new AppError('BAD_REQUEST_ORIGIN_NOT_ALLOWED', 'Requests from this origin are not allowed');
    }
    ctx.res.setHeader('access-control-allow-origin', origin);
    ctx.res.setHeader('access-control-allow-credentials', 'true');
    ctx.res.setHeader('access-control-expose-headers', EXPOSED_HEADERS);
    ctx.res.setHeader('vary', 'Origin');
  }

  /** Whether a WebSocket upgrade or any request from this Origin may proceed. */
  allows(origin: string | undefined, host: string | undefined): boolean {
    return origin === undefined || this.isSameOrigin(origin, host) || this.allowed.has(origin);
  }

  /** `OPTIONS`: answers the preflight of an allowed origin. */
  preflight(ctx: RequestContext): void {
    this.apply(ctx);
    ctx.res.writeHead(204, {
      'access-control-allow-methods': ALLOWED_METHODS,
      'access-control-allow-headers': ALLOWED_HEADERS,
      'access-control-max-age': '600',
    });
    ctx.res.end();
  }

  private isSameOrigin(origin: string, host: string | undefined): boolean {
    if (!host) return false;
    try {
      return new URL(origin).host === host;
    } catch {
      return false;
    }
  }
}
