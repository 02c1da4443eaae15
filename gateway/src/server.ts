import type { IncomingHttpHeaders } from 'node:http';
import { readFile } from 'node:fs/promises';
import { ApolloGateway } from '@apollo/gateway';
import { closeRedis, connectNats, connectRedis, drainNats, natsCheck, redisCheck } from '@aifactory/backing-services';
import { AppError } from '@aifactory/errors';
import { createGraphQLErrorFormatter, metricsRoute, sendGraphQLError, sendJson, startHttpServer, type RequestContext, type RouteHandler, type Routes } from '@aifactory/http';
import { systemClock, type Clock } from '@aifactory/clock';
import type { Logger } from '@aifactory/logging';
import { hasPlatformRole, InternalTokenSigner, loadSigningKey, type Principal } from '@aifactory/service-auth';
import { streamDeclarations } from '@aifactory/contracts';
import { ServiceMetrics, startTracing, requestSpans } from '@aifactory/telemetry';
import { ASSERTION_HEADER, PomeriumVerifier } from './auth/pomerium.js';
import { principalFromIdentity } from './auth/principal.js';
import type { GatewayConfig } from './config.js';
import { CorsPolicy } from './edge/cors.js';
import { IdempotencyStore } from './edge/idempotency.js';
import { RateLimiter, rateLimitHeaders } from './edge/rate-limiter.js';
import { configuredRateLimitPolicy, rateLimitSubject, strictest } from './edge/rate-limits.js';
import { gatewayGraphQLRoute } from './graphql/graphql-route.js';
import { PreparedOperations } from './graphql/prepared-operations.js';
import { explorerRoutes } from './routes/explorer.js';
import { restForwarding, webhookForwarding } from './routes/forwarding.js';
import { statusRoute } from './routes/status.js';
import { SubgraphSource } from './subgraph-source.js';
import { EventFeeds } from './subscriptions/event-feed.js';
import { streamCarrying } from './subscriptions/streams.js';
import { SubscriptionEngine, type SubscriptionAuthorizer } from './subscriptions/subscription-engine.js';
import { attachSubscriptionServer, type AuthenticatedConnection } from './subscriptions/subscription-server.js';

export interface RunningGateway {
  url: string;
  port: number;
  metrics: ServiceMetrics;
  /** Subjects with a live JetStream consumer for subscribers. */
  feeds: EventFeeds;
  /** Shutdown in seed 004's order: stop taking requests and finish in-flight ones, drain NATS, close Redis, close the HTTP server. */
  close(): Promise<void>;
}

export interface GatewayOptions {
  clock?: Clock;
  /** Replaces the per-event subscription check (tests; the IAM issue fills it with memberships). */
  authorizeSubscription?: SubscriptionAuthorizer;
}

export async function startGateway(config: GatewayConfig, logger: Logger, options: GatewayOptions = {}): Promise<RunningGateway> {
  const clock = options.clock ?? systemClock;
  const tracing = startTracing({
    serviceName: 'gateway',
    exporter: config.OTEL_TRACES_EXPORTER,
    otlpEndpoint: config.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
  });
  const metrics = new ServiceMetrics('gateway');
  const fetchDuration = metrics.histogram('aif_subgraph_fetch_duration_seconds', 'Subgraph calls by the gateway, to response headers', ['subgraph', 'outcome']);
  const limiterDecisions = metrics.counter('aif_rate_limit_decisions_total', 'Rate limiter decisions; fail_open counts requests let through while Redis failed', ['policy', 'outcome']);

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
    clock,
  });
  const stopLoading = new AbortController();
  void verifier.load(config.POMERIUM_JWKS_RETRY_MS, stopLoading.signal);

  const redis = connectRedis({ url: config.REDIS_URL, name: 'gateway', commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS, logger });
  // Give Redis a moment to connect, so the first keyed mutations are not refused; a Redis that is down does not stop the start.
  await Promise.race([new Promise((resolve) => redis.once('ready', resolve)), new Promise((resolve) => setTimeout(resolve, config.REDIS_COMMAND_TIMEOUT_MS * 8).unref())]);
  const nats = await connectNats({
    servers: config.NATS_URL,
    name: 'gateway',
    user: config.NATS_USER,
    pass: config.NATS_PASSWORD,
    logger,
  });

  const subgraphUrls = new Map<string, string>();
  const gateway = new ApolloGateway({
    supergraphSdl: await readFile(config.SUPERGRAPH_FILE, 'utf8'),
    buildService: ({ name, url }) => {
      const resolved = config.SUBGRAPH_URLS[name] ?? url ?? '';
      subgraphUrls.set(name, resolved);
      return new SubgraphSource({ name, url: resolved, signer, timeoutMs: config.UPSTREAM_TIMEOUT_MS, fetchDuration });
    },
    logger,
  });
  // load() plans the supergraph; a bad one stops the process here, before it listens.
  const { schema, executor } = await gateway.load();

  /** HTTP requests and subscription connections are admitted by this one check. */
  const authenticateHeaders = async (headers: IncomingHttpHeaders): Promise<AuthenticatedConnection> => {
    // Without the key set no assertion can be judged: that is our outage, not the caller's fault.
    if (!verifier.ready) throw new AppError('SERVICE_NOT_READY', 'The gateway cannot verify identities yet; retry shortly');
    const header = headers[ASSERTION_HEADER];
    const identity = await verifier.verify(Array.isArray(header) ? header[0] : header);
    return { principal: principalFromIdentity(identity, config.PLATFORM_ROLE_GROUPS), expiresAtMs: identity.exp * 1000 };
  };
  const authenticate = async (ctx: RequestContext): Promise<Principal> => (await authenticateHeaders(ctx.req.headers)).principal;
  const cors = new CorsPolicy(config.CORS_ALLOWED_ORIGINS);
  /** A foreign Origin is refused in GraphQL's error shape, like every other refusal on /graphql. */
  const browserGraphQLRoute =
    (handler: RouteHandler) =>
    async (ctx: RequestContext): Promise<void> => {
      try {
        cors.apply(ctx);
      } catch (error) {
        ctx.failure = error;
        sendGraphQLError(ctx.res, error, ctx.correlationId);
        return;
      }
      await handler(ctx);
    };

  const limiter = new RateLimiter({
    redis,
    keyPrefix: config.REDIS_KEY_PREFIX,
    clock,
    logger,
    // Operation names are few (config), but keep the label to the policy family so it never grows with traffic.
    onDecision: (outcome, policyName) => limiterDecisions.inc({ policy: policyName.split(':', 1)[0] ?? policyName, outcome }),
  });
  const policy = configuredRateLimitPolicy(config.RATE_LIMITS);
  const idempotency = new IdempotencyStore({
    redis,
    keyPrefix: config.REDIS_KEY_PREFIX,
    ttlSeconds: config.IDEMPOTENCY_TTL_SECONDS,
    inFlightTtlSeconds: config.IDEMPOTENCY_IN_FLIGHT_SECONDS,
    logger,
  });
  /** REST and webhook routes live beside the subgraph's /graphql, at the root of its origin. */
  const subgraphBaseUrl = (subgraph: string) => {
    const url = subgraphUrls.get(subgraph);
    return url ? new URL(url).origin : undefined;
  };

  const operations = new PreparedOperations(schema, {
    depth: config.GRAPHQL_MAX_DEPTH,
    height: config.GRAPHQL_MAX_HEIGHT,
    aliases: config.GRAPHQL_MAX_ALIASES,
    rootFields: config.GRAPHQL_MAX_ROOT_FIELDS,
    tokens: config.GRAPHQL_MAX_TOKENS,
  });
  const formatError = createGraphQLErrorFormatter(logger);

  const routes: Routes = {
    'GET /healthz': ({ res }) => sendJson(res, 200, { status: 'ok' }),
    'GET /readyz': ({ res }) => {
      const missing = verifier.ready ? [] : ['jwks'];
      sendJson(res, missing.length === 0 ? 200 : 503, missing.length === 0 ? { status: 'ready' } : { status: 'not_ready', missing });
    },
    'GET /metrics': metricsRoute(metrics),
    'GET /status': statusRoute({
      authenticate,
      checks: { redis: redisCheck(redis), nats: natsCheck(nats) },
      subgraphUrls: () => subgraphUrls,
      timeoutMs: config.STATUS_TIMEOUT_MS,
    }),
    'OPTIONS /graphql': (ctx) => cors.preflight(ctx),
    'POST /graphql': browserGraphQLRoute(
      gatewayGraphQLRoute({
        authenticate,
        operations,
        schema,
        executor,
        limiter,
        policy,
        idempotency,
        secretFields: new Set(config.IDEMPOTENCY_SECRET_FIELDS),
        bodyLimitBytes: config.BODY_LIMIT_BYTES,
        logger,
        formatError,
      }),
    ),
    ...(await explorerRoutes(schema, authenticate)),
  };

  const prefixRoutes = {
    '/webhooks/': webhookForwarding({
      routes: config.WEBHOOK_ROUTES,
      subgraphBaseUrl,
      bodyLimitBytes: config.WEBHOOK_BODY_LIMIT_BYTES,
      timeoutMs: config.UPSTREAM_TIMEOUT_MS,
      // Webhooks carry no identity: they are limited per provider and source address.
      beforeForward: async (ctx, provider) => {
        const decision = await limiter.check(ctx.req.socket.remoteAddress ?? 'unknown', `webhook:${provider}`, policy.webhookRule(provider));
        for (const [name, value] of Object.entries(rateLimitHeaders(decision))) ctx.res.setHeader(name, value);
        if (decision.outcome !== 'limited') return true;
        throw new AppError('RATE_LIMIT_EXCEEDED', 'Too many webhook deliveries; retry after the time in Retry-After');
      },
    }),
    '/api/': async (ctx: RequestContext) => {
      if (ctx.req.method === 'OPTIONS') {
        cors.preflight(ctx);
        return;
      }
      cors.apply(ctx);
      await restRoute(ctx);
    },
  };
  const restRoute = restForwarding({
    subgraphBaseUrl,
    authenticate,
    mintToken: (subgraph, principal, correlationId) => signer.mint({ audience: subgraph, principal, correlationId }),
    timeoutMs: config.UPSTREAM_TIMEOUT_MS,
    beforeForward: async (ctx, principal, subgraph) => {
      const subject = rateLimitSubject(principal);
      const decisions = [await limiter.check(subject, 'graphql', policy.principalRule(principal))];
      const routeRule = policy.routeRule(principal, subgraph);
      if (routeRule) decisions.push(await limiter.check(subject, `route:${subgraph}`, routeRule));
      const decision = strictest(decisions);
      for (const [name, value] of Object.entries(rateLimitHeaders(decision))) ctx.res.setHeader(name, value);
      if (decision.outcome !== 'limited') return true;
      throw new AppError('RATE_LIMIT_EXCEEDED', 'Too many requests; retry after the time in Retry-After');
    },
  });

  const http = await startHttpServer(
    {
      logger,
      routes,
      prefixRoutes,
      observer: metrics,
      ...(tracing.enabled ? { around: requestSpans('gateway') } : {}),
      shutdownGraceMs: config.SHUTDOWN_GRACE_MS,
    },
    config.PORT,
    config.HOST,
  );
  const feeds = new EventFeeds(nats, streamCarrying(streamDeclarations({ subjectPrefix: config.EVENT_SUBJECT_PREFIX })), logger);
  metrics.gauge('aif_subscriptions_active', 'GraphQL subscriptions open on this gateway', [], (gauge) => gauge.set(feeds.listeners));
  metrics.gauge('aif_subscription_feeds', 'JetStream consumers feeding subscriptions (one per subject)', [], (gauge) => gauge.set(feeds.activeSubjects));
  const subscriptions = attachSubscriptionServer({
    server: http.server,
    path: '/graphql',
    schema,
    operations,
    engine: new SubscriptionEngine({
      gateway,
      feeds,
      // Until IAM memberships exist, the principal's platform roles decide, as they do for queries (iam shows organizations to platform admins only).
      authorize: options.authorizeSubscription ?? ((principal) => hasPlatformRole(principal, 'platform_admin')),
      formatError,
      logger,
      maxPendingEvents: config.SUBSCRIPTION_MAX_PENDING_EVENTS,
    }),
    cors,
    authenticate: authenticateHeaders,
    subjectPrefix: config.EVENT_SUBJECT_PREFIX,
    maxBufferedBytes: config.SUBSCRIPTION_MAX_BUFFERED_BYTES,
    logger,
  });
  logger.info({ url: http.url }, 'gateway listening');

  let closing: Promise<void> | undefined;
  return {
    url: http.url,
    port: http.port,
    metrics,
    feeds,
    close: () => {
      closing ??= (async () => {
        stopLoading.abort();
        await subscriptions.close();
        await http.drain();
        await feeds.close();
        await drainNats(nats);
        await closeRedis(redis);
        await http.close();
        await gateway.stop();
        await tracing.shutdown();
      })();
      return closing;
    },
  };
}
