import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { BaseContext } from '@apollo/server';
import type { GatewayGraphQLResponse } from '@apollo/server-gateway-interface';
import { AppError } from '@aifactory/errors';
import { CORRELATION_HEADER, IDEMPOTENCY_KEY_HEADER } from '@aifactory/http';
import type { InternalTokenSigner, Principal } from '@aifactory/service-auth';
import { injectTraceContext, type Histogram } from '@aifactory/telemetry';

export interface GatewayContext extends BaseContext {
  principal: Principal;
  correlationId: string;
  /** One token per subgraph per request, minted on first use. */
  internalTokens: Map<string, Promise<string>>;
  /** The client's validated `Idempotency-Key`, set only for a mutation that carries one. */
  idempotencyKey?: string;
}

export interface SubgraphSourceOptions {
  name: string;
  url: string;
  signer: InternalTokenSigner;
  timeoutMs: number;
  /** aif_subgraph_fetch_duration_seconds{subgraph, outcome} */
  fetchDuration: Histogram<'subgraph' | 'outcome'>;
}

/** Subgraph responses are trusted less than their size suggests: a runaway one is cut off. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/**
 * Calls one subgraph with a fresh internal JWT whose `aud` is that subgraph
 * (ARCHITECTURE.md, Decisions: Internal JWT) and the W3C trace context of the
 * gateway's fetch span. Nothing else the client sent is forwarded but a
 * mutation's validated `Idempotency-Key`, from which a subgraph derives its
 * providers' idempotency keys: the headers here are the only ones the
 * subgraph sees. Plain node:http over kept-alive
 * sockets: per call it costs a fraction of WHATWG fetch, and this runs once
 * per subgraph per request.
 */
export class SubgraphSource implements GraphQLDataSource<GatewayContext> {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 256, scheduling: 'lifo' });
  private readonly target: URL;

  constructor(private readonly options: SubgraphSourceOptions) {
    this.target = new URL(options.url);
  }

  async process(options: GraphQLDataSourceProcessOptions<GatewayContext>): Promise<GatewayGraphQLResponse> {
    const context = options.context as GatewayContext;
    if (!context.principal) throw new AppError('AUTH_UNAUTHENTICATED', 'Authentication required');
    const { name } = this.options;
    let token = context.internalTokens.get(name);
    if (!token) {
      token = this.options.signer.mint({ audience: name, principal: context.principal, correlationId: context.correlationId });
      context.internalTokens.set(name, token);
    }
    const { query, variables, operationName } = options.request;
    const body = JSON.stringify({ query, variables, operationName });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      authorization: `Bearer ${await token}`,
      [CORRELATION_HEADER]: context.correlationId,
      ...(context.idempotencyKey === undefined ? {} : { [IDEMPOTENCY_KEY_HEADER]: context.idempotencyKey }),
    };
    injectTraceContext(headers);

    const startedAt = performance.now();
    let outcome = 'unreachable';
    try {
      const { status, text } = await this.post(headers, body);
      outcome = status === 200 ? 'ok' : `http_${status}`;
      return this.parse(status, text);
    } catch (error) {
      if (error instanceof AppError && error.code === 'UPSTREAM_TIMEOUT') outcome = 'timeout';
      else if (outcome === 'ok') outcome = 'invalid_body';
      throw error;
    } finally {
      this.options.fetchDuration.observe({ subgraph: name, outcome }, (performance.now() - startedAt) / 1000);
    }
  }

  private post(headers: Record<string, string>, body: string): Promise<{ status: number; text: string }> {
    const { name, timeoutMs } = this.options;
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { hostname: this.target.hostname, port: this.target.port, path: this.target.pathname + this.target.search, method: 'POST', headers, agent: this.agent },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_RESPONSE_BYTES) {
              req.destroy(new AppError('UPSTREAM_UNAVAILABLE', `The ${name} service answered with too much data`));
              return;
            }
            chunks.push(chunk);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks, size).toString('utf8') }));
          res.on('error', (error) => reject(unavailable(name, error)));
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new AppError('UPSTREAM_TIMEOUT', `The ${name} service did not answer in time`)));
      req.on('error', (error) => reject(error instanceof AppError ? error : unavailable(name, error)));
      req.end(body);
    });
  }

  private parse(status: number, text: string): GatewayGraphQLResponse {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw unavailable(this.options.name, new Error(`HTTP ${status} with a body that is not JSON`, { cause: error }));
    }
    // A GraphQL answer (even a 4xx one, with `errors`) is passed on; anything else means the subgraph is not serving.
    if (parsed && typeof parsed === 'object' && ('data' in parsed || 'errors' in parsed)) return parsed as GatewayGraphQLResponse;
    throw unavailable(this.options.name, new Error(`HTTP ${status} without a GraphQL body`));
  }
}

function unavailable(name: string, cause: unknown): AppError {
  return new AppError('UPSTREAM_UNAVAILABLE', `The ${name} service could not answer`, { cause });
}
