import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { BaseContext } from '@apollo/server';
import type { Fetcher } from '@apollo/utils.fetcher';
import { AppError } from '@aifactory/errors';
import { CORRELATION_HEADER } from '@aifactory/http';
import type { InternalTokenSigner, Principal } from '@aifactory/service-auth';

export interface GatewayContext extends BaseContext {
  principal: Principal;
  correlationId: string;
  /** One token per subgraph per request, minted on first use. */
  internalTokens: Map<string, Promise<string>>;
}

/**
 * Calls one subgraph with a fresh internal JWT whose `aud` is that subgraph
 * (ARCHITECTURE.md, Decisions: Internal JWT). Nothing the client sent is
 * forwarded: the headers here are the only ones the subgraph sees.
 */
export class SubgraphSource extends RemoteGraphQLDataSource<GatewayContext> {
  constructor(
    private readonly subgraphName: string,
    url: string,
    private readonly signer: InternalTokenSigner,
  ) {
    // Node's own fetch (undici) keeps connections alive and costs less per call than the default fetcher.
    super({ url, fetcher: fetch as unknown as Fetcher });
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
  }

  override didEncounterError(error: Error): void {
    throw new AppError('UPSTREAM_UNAVAILABLE', `The ${this.subgraphName} service could not answer`, { cause: error });
  }
}
