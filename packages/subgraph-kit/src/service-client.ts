import { AppError } from '@aifactory/errors';
import { CORRELATION_HEADER } from '@aifactory/http';
import { currentCorrelationId, type Logger } from '@aifactory/logging';
import { delegationOf, type ServiceTokenIssuer, type VerifiedInternalCall } from '@aifactory/service-auth';

export interface ServiceCallOptions {
  /** What this call needs, each held by this service's identity: least privilege, named per call. */
  scopes: readonly string[];
  /**
   * The call being served (`ctx.call`): its caller becomes the party this
   * service acts for (RFC 8693 `sub` and `act`). Left out, the service calls
   * for itself.
   */
  onBehalfOf?: VerifiedInternalCall;
  /** Default: the served call's correlation id, else the current request's. */
  correlationId?: string;
  timeoutMs?: number;
}

export interface GraphQLCall {
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
}

/** A GraphQL answer as the target sent it: `errors` are the target's, for the caller to judge. */
export interface GraphQLAnswer<T> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: Record<string, unknown> }>;
}

export interface ServiceClientOptions {
  issuer: ServiceTokenIssuer;
  /** Base URL per target service (config SERVICE_URLS). */
  urls: Record<string, string>;
  timeoutMs: number;
  logger: Logger;
  fetch?: typeof fetch;
}

const MAX_ERROR_BODY_CHARS = 500;

/**
 * How a subgraph calls another platform service (issue 15, Service
 * identity): `/graphql` or an `/api/...` route of the target, with a fresh
 * token of its own service identity minted for that one target, the
 * correlation id forwarded, and the current caller carried as the party it
 * acts for.
 */
export class ServiceClient {
  private readonly fetch: typeof fetch;

  constructor(private readonly options: ServiceClientOptions) {
    this.fetch = options.fetch ?? fetch;
  }

  get service(): string {
    return this.options.issuer.service;
  }

  /** POST `<target>/graphql`. A non-200 answer throws; GraphQL errors in a 200 answer are returned. */
  async graphql<T = Record<string, unknown>>(target: string, call: GraphQLCall, options: ServiceCallOptions): Promise<GraphQLAnswer<T>> {
    const response = await this.send(target, '/graphql', { method: 'POST', body: JSON.stringify(call), json: true }, options);
    const text = await response.text();
    if (response.status !== 200) throw refused(target, response.status, text);
    try {
      return JSON.parse(text) as GraphQLAnswer<T>;
    } catch (error) {
      throw new AppError('UPSTREAM_UNAVAILABLE', `The ${target} service sent an unreadable answer`, { cause: error, details: { service: target } });
    }
  }

  /**
   * An `/api/...` route of the target. `body` is sent as JSON. The response
   * is returned as it came, whatever its status, for the caller to read.
   */
  async request(target: string, path: string, init: { method: 'GET' | 'POST'; body?: unknown }, options: ServiceCallOptions): Promise<Response> {
    if (!path.startsWith('/api/')) throw new RangeError(`A service route is under /api/: ${path}`);
    return this.send(
      target,
      path,
      init.body === undefined ? { method: init.method, json: false } : { method: init.method, body: JSON.stringify(init.body), json: true },
      options,
    );
  }

  private async send(
    target: string,
    path: string,
    init: { method: string; body?: string; json: boolean },
    options: ServiceCallOptions,
  ): Promise<Response> {
    const base = this.options.urls[target];
    if (base === undefined) {
      throw new AppError('UPSTREAM_UNAVAILABLE', `The ${target} service is unavailable`, { details: { service: target, reason: 'no SERVICE_URLS entry' } });
    }
    const correlationId = options.correlationId ?? options.onBehalfOf?.correlationId ?? currentCorrelationId();
    const token = await this.options.issuer.mint({
      audience: target,
      scopes: options.scopes,
      correlationId,
      ...(options.onBehalfOf ? { onBehalfOf: delegationOf(options.onBehalfOf) } : {}),
    });
    const headers: Record<string, string> = { accept: 'application/json', authorization: `Bearer ${token}`, [CORRELATION_HEADER]: correlationId };
    if (init.json) headers['content-type'] = 'application/json';
    const url = new URL(path, base.endsWith('/') ? base : `${base}/`);
    this.options.logger.debug({ target, path, scopes: options.scopes, correlationId }, 'calling service');
    try {
      return await this.fetch(url, {
        method: init.method,
        headers,
        ...(init.body === undefined ? {} : { body: init.body }),
        signal: AbortSignal.timeout(options.timeoutMs ?? this.options.timeoutMs),
      });
    } catch (error) {
      // The signal's reason is a DOMException, from another realm in some runtimes: judge it by name.
      if ((error as { name?: unknown } | null)?.name === 'TimeoutError') {
        throw new AppError('UPSTREAM_TIMEOUT', `The ${target} service did not answer in time`, { cause: error, details: { service: target } });
      }
      throw new AppError('UPSTREAM_UNAVAILABLE', `The ${target} service is unavailable`, { cause: error, details: { service: target } });
    }
  }
}

/** The target's error code, when it sent one, travels in details (never to clients: toPublicError shows only ours). */
function refused(target: string, status: number, text: string): AppError {
  let code: unknown;
  try {
    const body = JSON.parse(text) as { errors?: Array<{ extensions?: { code?: unknown } }>; error?: { code?: unknown } };
    code = body.errors?.[0]?.extensions?.code ?? body.error?.code;
  } catch {
    code = undefined;
  }
  return new AppError('UPSTREAM_UNAVAILABLE', `The ${target} service refused the call`, {
    details: { service: target, status, ...(typeof code === 'string' ? { code } : { body: text.slice(0, MAX_ERROR_BODY_CHARS) }) },
  });
}
