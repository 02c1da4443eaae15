import type { GatewayGraphQLRequestContext } from '@apollo/server-gateway-interface';
import type { GraphQLSchema } from 'graphql';
import type { Logger } from '@aifactory/logging';
import type { GatewayContext } from '../subgraph-source.js';
import type { PreparedOperation } from './prepared-operations.js';

export interface GatewayRequest {
  prepared: PreparedOperation;
  /** The operation text; only logs and error messages of the executor read it. */
  query: string;
  variables: Record<string, unknown>;
  context: GatewayContext;
  schema: GraphQLSchema;
  logger: Logger;
}

/**
 * What @apollo/gateway's executor reads of Apollo Server's request context,
 * built without Apollo Server: the document is already parsed, measured and
 * validated, and its hash keys the query-plan cache.
 */
export function gatewayRequestContext(request: GatewayRequest): GatewayGraphQLRequestContext {
  const { prepared } = request;
  return {
    request: {
      query: request.query,
      variables: request.variables,
      ...(prepared.operationName ? { operationName: prepared.operationName } : {}),
    },
    logger: request.logger,
    schema: request.schema,
    context: request.context,
    queryHash: prepared.queryHash,
    document: prepared.document,
    source: request.query,
    operationName: prepared.operationName,
    operation: prepared.operation,
    metrics: {},
    overallCachePolicy: undefined,
  } as unknown as GatewayGraphQLRequestContext;
}
