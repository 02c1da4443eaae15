import type { ApolloServer, BaseContext, HTTPGraphQLRequest } from '@apollo/server';
import { HeaderMap } from '@apollo/server';
import { AppError } from '@aifactory/errors';
import { sendGraphQLError } from './responses.js';
import { isJsonContentType, parseJsonBody, readBody } from './body.js';
import type { RequestContext, RouteHandler } from './server.js';

/**
 * Checks the transport (POST, JSON, size, well-formed) before Apollo sees the
 * request, so each kind of bad input gets its own stable code.
 */
export async function readGraphQLRequest(ctx: RequestContext, bodyLimitBytes: number): Promise<HTTPGraphQLRequest> {
  const { req } = ctx;
  if (!isJsonContentType(req.headers['content-type'])) {
    throw new AppError('BAD_REQUEST_UNSUPPORTED_CONTENT_TYPE', 'Content-Type must be application/json');
  }
  const body = parseJsonBody(await readBody(req, bodyLimitBytes));
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new AppError('GRAPHQL_BAD_REQUEST', 'A GraphQL request body must be a JSON object');
  }
  const headers = new HeaderMap();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  return { method: 'POST', headers, search: ctx.url.search, body };
}

export async function executeGraphQL<TContext extends BaseContext>(
  ctx: RequestContext,
  httpGraphQLRequest: HTTPGraphQLRequest,
  apollo: ApolloServer<TContext>,
  contextValue: TContext,
): Promise<void> {
  const response = await apollo.executeHTTPGraphQLRequest({
    httpGraphQLRequest,
    context: async () => contextValue,
  });
  const { res } = ctx;
  for (const [name, value] of response.headers) res.setHeader(name, value);
  res.statusCode = response.status ?? 200;
  if (response.body.kind === 'complete') {
    res.setHeader('content-length', Buffer.byteLength(response.body.string).toString());
    res.end(response.body.string);
    return;
  }
  for await (const chunk of response.body.asyncIterator) res.write(chunk);
  res.end();
}

export interface GraphQLRouteOptions<TContext extends BaseContext> {
  apollo: ApolloServer<TContext>;
  bodyLimitBytes: number;
  /** Establishes who is calling; an AppError refuses the request before its body is even read. */
  authenticate: (ctx: RequestContext) => Promise<TContext>;
}

/** `POST /graphql`: authenticate, check the transport, execute; every refusal in the GraphQL error shape. */
export function graphQLRoute<TContext extends BaseContext>(options: GraphQLRouteOptions<TContext>): RouteHandler {
  return async (ctx) => {
    let contextValue: TContext;
    try {
      contextValue = await options.authenticate(ctx);
    } catch (error) {
      ctx.failure = error;
      sendGraphQLError(ctx.res, error, ctx.correlationId);
      return;
    }
    let request: HTTPGraphQLRequest;
    try {
      request = await readGraphQLRequest(ctx, options.bodyLimitBytes);
    } catch (error) {
      ctx.failure = error;
      sendGraphQLError(ctx.res, error, ctx.correlationId);
      return;
    }
    const { operationName } = request.body as { operationName?: unknown };
    if (typeof operationName === 'string') ctx.operation = operationName;
    await executeGraphQL(ctx, request, options.apollo, contextValue);
  };
}
