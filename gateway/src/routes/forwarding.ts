import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { injectTraceContext } from '@aifactory/telemetry';
import { AppError } from '@aifactory/errors';
import { CORRELATION_HEADER, readBody, sendRestError, type RequestContext, type RouteHandler } from '@aifactory/http';
import type { Principal } from '@aifactory/service-auth';

/**
 * `/webhooks/<provider>` and `/api/<subgraph>/...` (ARCHITECTURE.md,
 * Decisions: Routes besides GraphQL): the gateway adds nothing to the body and
 * answers nothing itself beyond refusals; the owning subgraph does the work.
 */

export interface WebhookForwardingOptions {
  /** Provider name (the path segment) to the subgraph that owns its webhooks. */
  routes: Record<string, string>;
  /** The subgraph's URL; only its origin counts, the path is `/webhooks/<provider>`. */
  subgraphBaseUrl(subgraph: string): string | undefined;
  bodyLimitBytes: number;
  /** Bounds the wait for the subgraph's response headers. */
  timeoutMs: number;
  /** The per-source rate limit; `false` means it already answered. */
  beforeForward?: (ctx: RequestContext, provider: string) => Promise<boolean>;
}

export interface RestForwardingOptions {
  /** The subgraph's URL, or undefined for a name that is no subgraph; only its origin counts, the path is `/api/<rest>`. */
  subgraphBaseUrl(subgraph: string): string | undefined;
  authenticate(ctx: RequestContext): Promise<Principal>;
  /** An internal JWT for exactly this subgraph (`aud`), carrying the principal. */
  mintToken(subgraph: string, principal: Principal, correlationId: string): Promise<string>;
  /** Bounds the wait for the subgraph's response headers; a long streamed body after them is fine. */
  timeoutMs: number;
  /** A per-principal limit; `false` means it already answered. */
  beforeForward?: (ctx: RequestContext, principal: Principal, subgraph: string) => Promise<boolean>;
}

const WEBHOOK_PREFIX = '/webhooks/';
const API_PREFIX = '/api/';

/** What a provider signs with or needs to identify a delivery; everything else, credentials above all, stays here. */
function webhookHeaders(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(incoming)) {
    if (value === undefined || name === CORRELATION_HEADER) continue;
    const passes =
      name === 'content-type' || name.startsWith('stripe-') || (name.startsWith('x-') && !name.startsWith('x-pomerium-'));
    if (passes) headers[name] = value;
  }
  return headers;
}

/** The headers of a subgraph's answer a client may see: framing, type and caching, never anything of the subgraph's own. */
const RELAYED_REST_HEADERS = ['content-type', 'content-length', 'content-disposition', 'cache-control', 'etag', 'last-modified', 'retry-after'];
const RELAYED_WEBHOOK_HEADERS = ['content-type', 'content-length'];

function refuse(ctx: RequestContext, error: AppError): void {
  ctx.failure = error;
  sendRestError(ctx.res, error, ctx.correlationId);
}

interface UpstreamCall {
  target: URL;
  method: string;
  headers: OutgoingHttpHeaders;
  /** A buffered body is sent with its length; a stream is piped as it arrives. */
  body: Buffer | Readable | undefined;
  timeoutMs: number;
  subgraph: string;
}

const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

/**
 * Resolves with the subgraph's response once its headers arrived. Refusals
 * are AppErrors: UPSTREAM_TIMEOUT when the headers took longer than the
 * timeout, UPSTREAM_UNAVAILABLE when the subgraph could not be reached. The
 * upstream request is aborted as soon as the client goes away.
 */
function callUpstream(ctx: RequestContext, call: UpstreamCall): Promise<IncomingMessage> {
  return new Promise<IncomingMessage>((resolve, reject) => {
    const https = call.target.protocol === 'https:';
    const upstream = (https ? httpsRequest : httpRequest)(call.target, {
      method: call.method,
      headers: call.headers,
      agent: https ? agents.https : agents.http,
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      upstream.destroy();
    }, call.timeoutMs);
    const abandon = () => {
      if (!ctx.res.writableFinished) upstream.destroy();
    };
    ctx.res.once('close', abandon);
    upstream.once('response', (response) => {
      clearTimeout(timer);
      resolve(response);
    });
    // `on`, not `once`: a socket error after the first (or after the answer arrived) must land here, not crash the process.
    upstream.on('error', (error) => {
      clearTimeout(timer);
      ctx.res.off('close', abandon);
      reject(
        timedOut
          ? new AppError('UPSTREAM_TIMEOUT', `The ${call.subgraph} service did not answer in time`, { cause: error })
          : new AppError('UPSTREAM_UNAVAILABLE', `The ${call.subgraph} service is unavailable`, { cause: error }),
      );
    });
    if (call.body === undefined) upstream.end();
    else if (Buffer.isBuffer(call.body)) upstream.end(call.body);
    else {
      // Not pipeline(): it would destroy the client's request (and socket) when the upstream fails, leaving no way to answer 502.
      call.body.once('error', () => upstream.destroy());
      call.body.pipe(upstream);
    }
  });
}

/** Streams the subgraph's answer through as it arrives: an export of many MB reaches the client while the subgraph still writes it. */
/** The upstream's answer, or undefined when this call already answered (a refusal) or the client left. */
async function callOrRefuse(ctx: RequestContext, call: UpstreamCall): Promise<IncomingMessage | undefined> {
  try {
    return await callUpstream(ctx, call);
  } catch (error) {
    // A client that left before the answer came aborted the call itself: nothing to answer, nothing failed.
    if (ctx.res.destroyed) return undefined;
    if (error instanceof AppError) {
      refuse(ctx, error);
      return undefined;
    }
    throw error;
  }
}

async function relay(ctx: RequestContext, response: IncomingMessage, relayed: readonly string[], subgraph: string): Promise<void> {
  for (const name of relayed) {
    const value = response.headers[name];
    if (value !== undefined) ctx.res.setHeader(name, value);
  }
  ctx.res.statusCode = response.statusCode ?? 502;
  // Whichever side broke first: a client that left is no failure of ours, a subgraph that broke off mid-stream is.
  let brokeFirst: 'client' | 'upstream' | undefined;
  ctx.res.once('close', () => (brokeFirst ??= 'client'));
  response.once('error', () => (brokeFirst ??= 'upstream'));
  try {
    await pipeline(response, ctx.res);
  } catch (error) {
    // The status line is gone already; the client learns of the break from a cut response.
    if (brokeFirst === 'upstream') ctx.failure = new AppError('UPSTREAM_UNAVAILABLE', `The ${subgraph} service broke off its answer`, { cause: error });
    ctx.res.destroy();
  }
}

/**
 * `POST /webhooks/<provider>`: no identity (the owning subgraph verifies the
 * provider's signature), so the body travels byte for byte: read up to the
 * limit as raw bytes, never decoded or re-encoded, and sent with its length.
 */
export function webhookForwarding(options: WebhookForwardingOptions): RouteHandler {
  return async (ctx) => {
    const provider = ctx.url.pathname.slice(WEBHOOK_PREFIX.length);
    const subgraph = Object.hasOwn(options.routes, provider) ? options.routes[provider] : undefined;
    if (!ctx.url.pathname.startsWith(WEBHOOK_PREFIX) || provider.includes('/') || subgraph === undefined) {
      refuse(ctx, new AppError('NOT_FOUND', `No webhook route for ${ctx.url.pathname}`));
      return;
    }
    if (ctx.req.method !== 'POST') {
      ctx.res.setHeader('allow', 'POST');
      refuse(ctx, new AppError('BAD_REQUEST_METHOD_NOT_ALLOWED', `${ctx.req.method} is not allowed on ${ctx.url.pathname}`));
      return;
    }
    if (options.beforeForward && !(await options.beforeForward(ctx, provider))) return;
    const base = options.subgraphBaseUrl(subgraph);
    if (base === undefined) {
      refuse(ctx, new AppError('UPSTREAM_UNAVAILABLE', `The ${subgraph} service is unavailable`, { cause: new Error(`no URL for subgraph ${subgraph}`) }));
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(ctx.req, options.bodyLimitBytes);
    } catch (error) {
      if (error instanceof AppError) return refuse(ctx, error);
      throw error;
    }
    const response = await callOrRefuse(ctx, {
      target: new URL(`${WEBHOOK_PREFIX}${provider}`, base),
      method: 'POST',
      headers: { ...webhookHeaders(ctx.req.headers), 'content-length': String(body.length), [CORRELATION_HEADER]: ctx.correlationId },
      body,
      timeoutMs: options.timeoutMs,
      subgraph,
    });
    if (response) await relay(ctx, response, RELAYED_WEBHOOK_HEADERS, subgraph);
  };
}

/**
 * `/api/<subgraph>/<rest>`: authenticated like GraphQL, then forwarded to the
 * subgraph's `/api/<rest>` with an internal JWT for that subgraph. Of what the
 * client sent only the method, path, query, `accept`, `content-type` and the
 * body travel: cookies, its own credentials and the Pomerium assertion stay
 * at the edge.
 */
export function restForwarding(options: RestForwardingOptions): RouteHandler {
  return async (ctx) => {
    let principal: Principal;
    try {
      principal = await options.authenticate(ctx);
    } catch (error) {
      if (error instanceof AppError) return refuse(ctx, error);
      throw error;
    }
    const path = ctx.url.pathname.startsWith(API_PREFIX) ? ctx.url.pathname.slice(API_PREFIX.length) : '';
    const slash = path.indexOf('/');
    const subgraph = slash > 0 ? path.slice(0, slash) : '';
    const rest = slash > 0 ? path.slice(slash + 1) : '';
    const base = subgraph === '' || rest === '' ? undefined : options.subgraphBaseUrl(subgraph);
    if (base === undefined) {
      refuse(ctx, new AppError('NOT_FOUND', `No route for ${ctx.url.pathname}`));
      return;
    }
    if (options.beforeForward && !(await options.beforeForward(ctx, principal, subgraph))) return;

    const incoming = ctx.req.headers;
    const headers: OutgoingHttpHeaders = {
      authorization: `Bearer ${await options.mintToken(subgraph, principal, ctx.correlationId)}`,
      [CORRELATION_HEADER]: ctx.correlationId,
    };
    for (const name of ['accept', 'content-type', 'content-length'] as const) {
      if (incoming[name] !== undefined) headers[name] = incoming[name];
    }
    const trace: Record<string, string> = {};
    injectTraceContext(trace);
    Object.assign(headers, trace);
    const hasBody = incoming['content-length'] !== undefined || incoming['transfer-encoding'] !== undefined;
    const response = await callOrRefuse(ctx, {
      target: new URL(`${API_PREFIX}${rest}${ctx.url.search}`, base),
      method: ctx.req.method ?? 'GET',
      headers,
      body: hasBody ? ctx.req : undefined,
      timeoutMs: options.timeoutMs,
      subgraph,
    });
    if (response) await relay(ctx, response, RELAYED_REST_HEADERS, subgraph);
  };
}
