import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { BaseContext } from '@apollo/server';
import type { Fetcher } from '@apollo/utils.fetcher';
import { AppError } from '@aifactory/errors';
import { CORRELATION_HEADER } from '@aifactory/http';
import type { InternalTokenSigner, Principal } from '@aifactory/service-auth';
import { injectTraceContext, type Histogram } from '@aifactory/telemetry';

export interface GatewayContext extends BaseContext {
  principal: Principal;
  correlationId: string;
  /** One token per subgraph per request, minted on first use. */
  internalTokens: Map<string, Promise<string>>;
}

export interface SubgraphSourceOptions {
  name: string;
  url: string;
  signer: InternalTokenSigner;
  timeoutMs: number;
  /** aif_subgraph_fetch_duration_seconds{subgraph, outcome} */
  fetchDuration: Histogram<'subgraph' | 'outcome'>;
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && (error.name === 'TimeoutError' || (error.cause instanceof Error && error.cause.name === 'TimeoutError'));
}

/**
 * Calls one subgraph with a fresh internal JWT whose `aud` is that subgraph
 * (ARCHITECTURE.md, Decisions: Internal JWT) and the W3C trace context of the
 * gateway's fetch span. Nothing the client sent is forwarded: the headers
 * here are the only ones the subgraph sees.
 */
export class SubgraphSource extends RemoteGraphQLDataSource<GatewayContext> {
  private readonly subgraphName: string;
  private readonly signer: InternalTokenSigner;

  constructor(options: SubgraphSourceOptions) {
    const { name, timeoutMs, fetchDuration } = options;
    // Node's own fetch (undici) keeps connections alive and costs less per call than the default fetcher.
    const timedFetch = async (url: string, init: RequestInit): Promise<Response> => {
      const startedAt = performance.now();
      try {
        const response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
        fetchDuration.observe({ subgraph: name, outcome: response.ok ? 'ok' : `http_${response.status}` }, (performance.now() - startedAt) / 1000);
        return response;
      } catch (error) {
        fetchDuration.observe({ subgraph: name, outcome: isTimeout(error) ? 'timeout' : 'unreachable' }, (performance.now() - startedAt) / 1000);
        throw error;
      }
    };
    super({ url: options.url, fetcher: timedFetch as unknown as Fetcher });
    this.subgraphName = name;
    this.signer = options.signer;
  }

  override async willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<GatewayContext>): Promise<void> {
    if (!('principal' in context) || !context.principal) {
      throw new AppError('AUTH_UNAUTHENTICATED', 'Authentication required');
    }
    let token = context.internalTokens.get(this.subgraphName);
    if (!token) {
      token = this.signer.mint({ audience: this.subgraphName, principal: context.principal, correlationId: context.correlationId });
      context.internalTokens.set(this.subgraphName, token);
    }
    const headers = request.http?.headers;
    if (!headers) throw new AppError('INTERNAL_ERROR', 'Subgraph request has no headers');
    headers.set('authorization', `Bearer ${await token}`);
    headers.set(CORRELATION_HEADER, context.correlationId);
    const trace: Record<string, string> = {};
    injectTraceContext(trace);
    for (const [name, value] of Object.entries(trace)) headers.set(name, value);
  }

  override didEncounterError(error: Error): void {
    if (isTimeout(error)) {
      throw new AppError('UPSTREAM_TIMEOUT', `The ${this.subgraphName} service did not answer in time`, { cause: error });
    }
    throw new AppError('UPSTREAM_UNAVAILABLE', `The ${this.subgraphName} service could not answer`, { cause: error });
  }
}
