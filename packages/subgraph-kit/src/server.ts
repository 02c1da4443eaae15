import { AppError } from '@aifactory/errors';
import { ApolloServer, type BaseContext } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { DocumentNode } from 'graphql';
import type { Logger } from '@aifactory/logging';
import { checkReadiness, closeRedis, connectNats, connectRedis, drainNats, natsCheck, redisCheck } from '@aifactory/backing-services';
import { ServiceMetrics, startTracing, requestSpans } from '@aifactory/telemetry';
import {
  createGraphQLErrorFormatter,
  graphQLRoute,
  IDEMPOTENCY_KEY_HEADER,
  metricsRoute,
  unknownOperationPlugin,
  sendJson,
  startHttpServer,
  validateIdempotencyKey,
  type RequestContext,
  type RunningHttpServer,
  type Routes,
} from '@aifactory/http';
import {
  actorIdsOf,
  InternalTokenVerifier,
  openSigningKeyFile,
  openVerificationKeys,
  ServiceTokenIssuer,
  type Principal,
  type ReloadingSigningKey,
  type VerifiedInternalCall,
} from '@aifactory/service-auth';
import type { SubgraphConfig } from './config.js';
import type { Database } from './database.js';
import { applyScopesDirective, type Access } from '@aifactory/authz';
import type { AccessModelReader } from '@aifactory/access-model';
import type { EventPublisher } from '@aifactory/contracts';
import type { NatsConnection } from '@nats-io/transport-node';
import { startAccessControl, type AccessControl } from './access-control.js';
import { subgraphHttpRoutes, type SubgraphHttpRoute } from './http-routes.js';
import { startOutboxRelay, type OutboxSource, type RunningOutboxRelay } from './outbox.js';
import { attributedVerifier, type VerifyCall } from './service-calls.js';
import { ServiceClient } from './service-client.js';

export interface SubgraphContext extends BaseContext {
  principal: Principal;
  correlationId: string;
  call: VerifiedInternalCall;
  logger: Logger;
  /** This request's authorization: `@scopes` asks it, and so do the domain services (`can`, `require`). */
  access: Access;
  /** IAM's read model: the role catalogue and policy snapshots with their age. */
  accessModel: AccessModelReader;
  /**
   * Calls other platform services with this service's own identity; set when
   * SERVICE_CREDENTIAL_FILE is. Pass `onBehalfOf: ctx.call` to act for the caller.
   */
  serviceClient?: ServiceClient;
  /**
   * The client's `Idempotency-Key` of this mutation, forwarded by the
   * gateway; absent on queries and unkeyed mutations. A domain that calls a
   * provider derives the provider's key from it, so a retried mutation can
   * never make a second charge.
   */
  idempotencyKey?: string;
}

/** What `onConnected` gets: the subgraph's NATS connection and the subject prefix its events carry. */
export interface ConnectedServices {
  nats: NatsConnection;
  logger: Logger;
  metrics: ServiceMetrics;
  subjectPrefix: string;
  /**
   * IAM's read model (catalogue, policy snapshots). It starts right after
   * `onConnected` returns (iam fills it from there), so ask for it when
   * needed, not while starting.
   */
  accessModel(): AccessModelReader;
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
  /** REST routes beside `/graphql`: exports under `/api/`, provider webhooks under `/webhooks/`. */
  httpRoutes?: SubgraphHttpRoute[];
  /** Closes the subgraph's pools; shutdown calls it after draining NATS and before closing the HTTP server. */
  closePools?: () => Promise<void>;
  /** The subgraph's outbox: while it serves, a relay publishes it into JetStream and prunes what was published. */
  outbox?: OutboxSource;
  /**
   * Runs once NATS is connected and before the subgraph waits for IAM's
   * read model: iam publishes that model from here. What it returns is
   * stopped at shutdown, right after in-flight requests finish.
   */
  onConnected?: (services: ConnectedServices) => Promise<{ stop(): Promise<void> } | void>;
}

export interface RunningSubgraph extends RunningHttpServer {
  name: string;
  metrics: ServiceMetrics;
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
  const keys = await openVerificationKeys(config.INTERNAL_JWT_PUBLIC_KEY_FILES, {
    reloadMs: config.INTERNAL_JWT_KEY_RELOAD_MS,
    onError: (error) => logger.warn({ err: error }, 'internal JWT public keys could not be re-read; keeping the keys read before'),
    onChange: (kids) => logger.info({ kids }, 'internal JWT public keys reloaded'),
  });
  let credential: ReloadingSigningKey | undefined;
  try {
    credential =
      config.SERVICE_CREDENTIAL_FILE === undefined
        ? undefined
        : await openSigningKeyFile(config.SERVICE_CREDENTIAL_FILE, {
            reloadMs: config.INTERNAL_JWT_KEY_RELOAD_MS,
            onError: (error) => logger.warn({ err: error }, 'service credential could not be re-read; keeping the key read before'),
            onChange: ([kid]) => logger.info({ kid }, 'service credential reloaded'),
          });
  } catch (error) {
    keys.close();
    throw error;
  }
  const closeKeys = () => {
    keys.close();
    credential?.close();
  };
  const tracing = startTracing({
    serviceName: definition.name,
    exporter: config.OTEL_TRACES_EXPORTER,
    otlpEndpoint: config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
  });
  const metrics = new ServiceMetrics(definition.name);
  const redis = connectRedis({ url: config.REDIS_URL, name: definition.name, commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS, logger });
  const nats = await connectNats({
    servers: config.NATS_URL,
    name: definition.name,
    user: config.NATS_USER,
    pass: config.NATS_PASSWORD,
    logger,
  });
  let relay: RunningOutboxRelay | undefined;
  let connected: { stop(): Promise<void> } | void = undefined;
  let access: AccessControl | undefined;
  try {
    if (definition.outbox) {
      relay = await startOutboxRelay({
        source: definition.outbox,
        nc: nats,
        logger,
        metrics,
        subjectPrefix: config.EVENT_SUBJECT_PREFIX,
        retentionMs: config.OUTBOX_RETENTION_HOURS * 60 * 60 * 1000,
      });
    }
    const subjectPrefix = config.EVENT_SUBJECT_PREFIX;
    connected = await definition.onConnected?.({
      nats,
      logger,
      metrics,
      subjectPrefix,
      accessModel: () => {
        if (!access) throw new AppError('SERVICE_NOT_READY', 'The access model has not been started yet');
        return access.reader;
      },
    });
    access = await startAccessControl({
      publisher: definition.name as EventPublisher,
      nats,
      subjectPrefix,
      logger,
      metrics,
      ...(definition.outbox ? { outbox: definition.outbox } : {}),
      maxAgeMs: config.ACCESS_MODEL_MAX_AGE_MS,
    });
    const verifier = new InternalTokenVerifier({
      audience: definition.name,
      issuers: config.INTERNAL_JWT_ISSUERS,
      keys,
      // Asked on every call: a disabled identity is refused from the moment its entry arrives.
      serviceIdentities: (name) => access?.reader.serviceIdentity(name),
    });
    access.reader.onServiceIdentityChange((name, entry) => {
      verifier.forgetService(name);
      logger.info({ service: name, status: entry?.status ?? 'removed', version: entry?.version }, 'service identity changed');
    });
    const serviceClient = serviceClientFor(definition.name, config, credential, access, logger);
    return await serve(definition, config, logger, {
      verifyCall: attributedVerifier(verifier, definition.name, logger, metrics),
      serviceClient,
      closeKeys,
      tracing,
      metrics,
      redis,
      nats,
      relay,
      connected,
      access,
    });
  } catch (error) {
    // A start that fails half way lets go of what it holds, so the caller can close its pools and exit.
    closeKeys();
    await access?.stop();
    await connected?.stop();
    await relay?.stop();
    await drainNats(nats);
    await closeRedis(redis);
    await tracing.shutdown();
    throw error;
  }
}

/** The client for calls to other services, when this one has a credential of its own. */
function serviceClientFor(
  name: string,
  config: SubgraphConfig,
  credential: ReloadingSigningKey | undefined,
  access: AccessControl,
  logger: Logger,
): ServiceClient | undefined {
  if (credential === undefined) return undefined;
  const issuer = new ServiceTokenIssuer({
    service: name,
    key: credential,
    ttlSeconds: config.SERVICE_TOKEN_TTL_SECONDS,
    identity: () => access.reader.serviceIdentity(name),
  });
  logger.info({ kid: credential.current().kid, targets: Object.keys(config.SERVICE_URLS) }, 'service credential loaded');
  return new ServiceClient({ issuer, urls: config.SERVICE_URLS, timeoutMs: config.SERVICE_CALL_TIMEOUT_MS, logger });
}

interface Connected {
  verifyCall: VerifyCall;
  serviceClient: ServiceClient | undefined;
  closeKeys: () => void;
  tracing: ReturnType<typeof startTracing>;
  metrics: ServiceMetrics;
  redis: ReturnType<typeof connectRedis>;
  nats: Awaited<ReturnType<typeof connectNats>>;
  relay: RunningOutboxRelay | undefined;
  connected: { stop(): Promise<void> } | void;
  access: AccessControl;
}

async function serve<TContext extends SubgraphContext>(
  definition: SubgraphDefinition<TContext>,
  config: SubgraphConfig,
  logger: Logger,
  { verifyCall, serviceClient, closeKeys, tracing, metrics, redis, nats, relay, connected, access }: Connected,
): Promise<RunningSubgraph> {
  const apollo = new ApolloServer<TContext>({
    schema: applyScopesDirective(
      buildSubgraphSchema({ typeDefs: definition.typeDefs, resolvers: definition.resolvers as GraphQLResolverMap<unknown> }),
      (context) => (context as SubgraphContext).access,
    ),
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
    ...subgraphHttpRoutes(
      definition.httpRoutes ?? [],
      (ctx) => verifyCall(bearerToken(ctx.req.headers.authorization)),
      access.reader,
      (principal, correlationId) => access.accessFor(principal, correlationId),
      serviceClient,
    ),
    'GET /healthz': ({ res }) => sendJson(res, 200, { status: 'ok', subgraph: definition.name }),
    // Ready means every dependency answers: its Postgres, Redis and NATS, each with its latency.
    'GET /readyz': async ({ res }) => {
      const report = await checkReadiness(
        {
          postgres: definition.ready,
          redis: redisCheck(redis),
          nats: natsCheck(nats),
          // Without IAM's catalogue every authorization would fail closed.
          accessModel: async () => {
            if (!access.reader.catalog()) throw new Error('the authorization catalogue has not been loaded yet');
          },
        },
        config.READINESS_TIMEOUT_MS,
      );
      const down = Object.entries(report.dependencies).filter(([, status]) => status.status === 'down');
      if (down.length > 0) logger.warn({ dependencies: Object.fromEntries(down) }, 'not ready');
      sendJson(res, report.ready ? 200 : 503, {
        status: report.ready ? 'ready' : 'not_ready',
        subgraph: definition.name,
        dependencies: report.dependencies,
        ...(report.ready ? {} : { missing: down.map(([name]) => name) }),
      });
    },
    'GET /metrics': metricsRoute(metrics),
    'POST /graphql': graphQLRoute<TContext>({
      apollo,
      bodyLimitBytes: config.BODY_LIMIT_BYTES,
      authenticate: async (ctx) => {
        const call = await verifyCall(bearerToken(ctx.req.headers.authorization));
        ctx.actor = actorIdsOf(call.principal);
        // A malformed forwarded key is refused as the gateway refuses it, not served as if none had been sent.
        const idempotencyKey = validateIdempotencyKey(ctx.req.headers[IDEMPOTENCY_KEY_HEADER]);
        return definition.extendContext({
          principal: call.principal,
          correlationId: ctx.correlationId,
          call,
          logger,
          access: access.accessFor(call.principal, ctx.correlationId),
          accessModel: access.reader,
          ...(serviceClient ? { serviceClient } : {}),
          ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
        });
      },
    }),
  };

  const http = await startHttpServer(
    {
      logger,
      routes,
      observer: metrics,
      ...(tracing.enabled ? { around: requestSpans(definition.name) } : {}),
      shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
    },
    config.PORT,
    config.HOST,
  );
  logger.info({ url: http.url }, 'subgraph listening');
  let closing: Promise<void> | undefined;
  return {
    ...http,
    name: definition.name,
    metrics,
    // Seed 004's order: stop taking requests and finish in-flight ones, drain NATS, close pools, close the HTTP server.
    // The relay stops in between: after the last request's writes, while the NATS connection and pool it uses are open.
    // Rows it has not reached stay pending for the next start (or another instance's relay).
    close: () => {
      closing ??= (async () => {
        await http.drain();
        await connected?.stop();
        // Denies still being written go out before the pool closes.
        await access.stop();
        await relay?.stop();
        await drainNats(nats);
        await definition.closePools?.();
        await closeRedis(redis);
        await http.close();
        await apollo.stop();
        await tracing.shutdown();
        closeKeys();
      })();
      return closing;
    },
  };
}

/**
 * Starts a subgraph over a database it then owns: readiness pings the
 * database, its schema's outbox is relayed while it serves, and shutdown
 * closes its pool in seed 004's order.
 */
export async function serveSubgraphWithDatabase<TContext extends SubgraphContext>(
  definition: Omit<SubgraphDefinition<TContext>, 'ready' | 'closePools' | 'outbox'>,
  database: Pick<Database<unknown>, 'pool' | 'schema' | 'ping' | 'close'>,
  config: SubgraphConfig,
  logger: Logger,
): Promise<RunningSubgraph> {
  try {
    return await startSubgraph(
      { ...definition, ready: database.ping, closePools: database.close, outbox: { pool: database.pool, schema: database.schema } },
      config,
      logger,
    );
  } catch (error) {
    await database.close();
    throw error;
  }
}
