import { ApolloServer, type BaseContext } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { DocumentNode } from 'graphql';
import type { Logger } from '@aifactory/logging';
import {
  createGraphQLErrorFormatter,
  graphQLRoute,
  unknownOperationPlugin,
  sendJson,
  startHttpServer,
  type RunningHttpServer,
  type Routes,
} from '@aifactory/http';
import {
  InternalTokenVerifier,
  loadVerificationKeys,
  type Principal,
  type VerifiedInternalCall,
} from '@aifactory/service-auth';
import type { SubgraphConfig } from './config.js';

export interface SubgraphContext extends BaseContext {
  principal: Principal;
  correlationId: string;
  call: VerifiedInternalCall;
  logger: Logger;
}

export interface SubgraphDefinition<TContext extends SubgraphContext> {
  /** The subgraph's name: also the `aud` its internal JWTs must carry. */
  name: string;
  typeDefs: DocumentNode;
  resolvers: GraphQLResolverMap<TContext>;
  /** Adds the subgraph's own services to the verified base context. */
  extendContext: (base: SubgraphContext) => TContext;
  /** A cheap check that the subgraph can serve (database reachable). */
  ready: () => Promise<void>;
}

export interface RunningSubgraph extends RunningHttpServer {
  name: string;
}

function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const [scheme, token] = header.split(' ');
  return scheme?.toLowerCase() === 'bearer' && token ? token : undefined;
}

/**
 * Serves one subgraph: `POST /graphql` behind internal-JWT verification,
 * `GET /healthz` and `GET /readyz`. Every GraphQL call, `_service` and
 * `_entities` included, needs a token minted for this subgraph.
 */
export async function startSubgraph<TContext extends SubgraphContext>(
  definition: SubgraphDefinition<TContext>,
  config: SubgraphConfig,
  logger: Logger,
): Promise<RunningSubgraph> {
  const verifier = new InternalTokenVerifier({
    audience: definition.name,
    issuers: config.INTERNAL_JWT_ISSUERS,
    keys: await loadVerificationKeys(config.INTERNAL_JWT_PUBLIC_KEY_FILES),
  });
  const apollo = new ApolloServer<TContext>({
    schema: buildSubgraphSchema({ typeDefs: definition.typeDefs, resolvers: definition.resolvers as GraphQLResolverMap<unknown> }),
    includeStacktraceInErrorResponses: false,
    // Shutdown is ours (closeOnSignals): Apollo would re-raise the signal and skip closing the pools.
    stopOnTerminationSignals: false,
    formatError: createGraphQLErrorFormatter(logger),
    // No inline traces: nothing here reports to Apollo's cloud, and they cost every request.
    plugins: [ApolloServerPluginLandingPageDisabled(), ApolloServerPluginInlineTraceDisabled(), unknownOperationPlugin],
    logger,
  });
  await apollo.start();

  const routes: Routes = {
    'GET /healthz': ({ res }) => sendJson(res, 200, { status: 'ok', subgraph: definition.name }),
    'GET /readyz': async ({ res }) => {
      try {
        await definition.ready();
        sendJson(res, 200, { status: 'ready', subgraph: definition.name });
      } catch (error) {
        logger.warn({ err: error }, 'not ready');
        sendJson(res, 503, { status: 'not_ready', subgraph: definition.name, missing: ['database'] });
      }
    },
    'POST /graphql': graphQLRoute<TContext>({
      apollo,
      bodyLimitBytes: config.BODY_LIMIT_BYTES,
      logger,
      authenticate: async (ctx) => {
        const call = await verifier.verify(bearerToken(ctx.req.headers.authorization));
        return definition.extendContext({ principal: call.principal, correlationId: ctx.correlationId, call, logger });
      },
    }),
  };

  const http = await startHttpServer({ logger, routes, shutdownGraceMs: config.SHUTDOWN_GRACE_MS }, config.PORT, config.HOST);
  logger.info({ url: http.url }, 'subgraph listening');
  return {
    ...http,
    name: definition.name,
    close: async () => {
      await http.close();
      await apollo.stop();
    },
  };
}

/**
 * Starts a subgraph over a database it then owns: readiness pings the
 * database, and closing stops the server first (in-flight requests finish)
 * and the pool last.
 */
export async function serveSubgraphWithDatabase<TContext extends SubgraphContext>(
  definition: Omit<SubgraphDefinition<TContext>, 'ready'>,
  database: { ping(): Promise<void>; close(): Promise<void> },
  config: SubgraphConfig,
  logger: Logger,
): Promise<RunningSubgraph> {
  try {
    const server = await startSubgraph({ ...definition, ready: database.ping }, config, logger);
    return {
      ...server,
      close: async () => {
        await server.close();
        await database.close();
      },
    };
  } catch (error) {
    await database.close();
    throw error;
  }
}
