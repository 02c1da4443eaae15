import { readFile } from 'node:fs/promises';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { AppError } from '@aifactory/errors';
import {
  createGraphQLErrorFormatter,
  graphQLRoute,
  unknownOperationPlugin,
  sendJson,
  startHttpServer,
  type RequestContext,
  type Routes,
} from '@aifactory/http';
import type { Logger } from '@aifactory/logging';
import { InternalTokenSigner, loadSigningKey, type Principal } from '@aifactory/service-auth';
import { ASSERTION_HEADER, PomeriumVerifier } from './auth/pomerium.js';
import { principalFromIdentity } from './auth/principal.js';
import type { GatewayConfig } from './config.js';
import { SubgraphSource, type GatewayContext } from './subgraph-source.js';

export interface RunningGateway {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startGateway(config: GatewayConfig, logger: Logger): Promise<RunningGateway> {
  const signer = new InternalTokenSigner({
    issuer: config.INTERNAL_JWT_ISSUER,
    key: await loadSigningKey(config.INTERNAL_JWT_PRIVATE_KEY_FILE),
    ttlSeconds: config.INTERNAL_JWT_TTL_SECONDS,
  });
  const verifier = new PomeriumVerifier({
    jwksUrl: config.POMERIUM_JWKS_URL,
    issuer: config.POMERIUM_ISSUER,
    audience: config.POMERIUM_AUDIENCE,
    algorithms: config.POMERIUM_JWT_ALGORITHMS,
    cooldownMs: config.POMERIUM_JWKS_COOLDOWN_MS,
    timeoutMs: config.POMERIUM_JWKS_TIMEOUT_MS,
    logger,
  });
  const stopLoading = new AbortController();
  void verifier.load(config.POMERIUM_JWKS_RETRY_MS, stopLoading.signal);

  const gateway = new ApolloGateway({
    supergraphSdl: await readFile(config.SUPERGRAPH_FILE, 'utf8'),
    buildService: ({ name, url }) => new SubgraphSource(name, config.SUBGRAPH_URLS[name] ?? url ?? '', signer),
    logger,
  });
  const apollo = new ApolloServer<GatewayContext>({
    gateway,
    includeStacktraceInErrorResponses: false,
    // Shutdown is ours (closeOnSignals): Apollo would re-raise the signal and skip closing the pools.
    stopOnTerminationSignals: false,
    formatError: createGraphQLErrorFormatter(logger),
    plugins: [ApolloServerPluginLandingPageDisabled(), unknownOperationPlugin],
    logger,
  });
  // start() loads and plans the supergraph; a bad one stops the process here, before it listens.
  await apollo.start();

  const authenticate = async (ctx: RequestContext): Promise<Principal> => {
    // Without the key set no assertion can be judged: that is our outage, not the caller's fault.
    if (!verifier.ready) throw new AppError('SERVICE_NOT_READY', 'The gateway cannot verify identities yet; retry shortly');
    const header = ctx.req.headers[ASSERTION_HEADER];
    const identity = await verifier.verify(Array.isArray(header) ? header[0] : header);
    return principalFromIdentity(identity, config.PLATFORM_ROLE_GROUPS);
  };

  const routes: Routes = {
    'GET /healthz': ({ res }) => sendJson(res, 200, { status: 'ok' }),
    'GET /readyz': ({ res }) => {
      const missing = verifier.ready ? [] : ['jwks'];
      sendJson(res, missing.length === 0 ? 200 : 503, missing.length === 0 ? { status: 'ready' } : { status: 'not_ready', missing });
    },
    'POST /graphql': graphQLRoute<GatewayContext>({
      apollo,
      bodyLimitBytes: config.BODY_LIMIT_BYTES,
      logger,
      authenticate: async (ctx) => ({ principal: await authenticate(ctx), correlationId: ctx.correlationId, internalTokens: new Map() }),
    }),
  };

  const http = await startHttpServer({ logger, routes, shutdownGraceMs: config.SHUTDOWN_GRACE_MS }, config.PORT, config.HOST);
  logger.info({ url: http.url }, 'gateway listening');
  return {
    url: http.url,
    port: http.port,
    close: async () => {
      stopLoading.abort();
      await http.close();
      await apollo.stop();
    },
  };
}
