import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { readFile } from 'node:fs/promises';
import { ApolloGateway } from '@apollo/gateway';
import { AccessModelReader } from '@aifactory/access-model';
import type { DenyAuditor } from '@aifactory/authz';
import { closeRedis, connectNats, connectRedis, drainNats, natsCheck, redisCheck } from '@aifactory/backing-services';
import { AppError, isAppError, type ErrorCode } from '@aifactory/errors';
import { CORRELATION_HEADER, createGraphQLErrorFormatter, metricsRoute, sendGraphQLError, sendJson, startHttpServer, type RequestContext, type RouteHandler, type Routes } from '@aifactory/http';
import { systemClock, type Clock } from '@aifactory/clock';
import { acceptCorrelationId, type Logger } from '@aifactory/logging';
import { actorIdsOf, InternalTokenSigner, openSigningKeyFile, PepperRing, type Principal } from '@aifactory/service-auth';
import { streamDeclarations } from '@aifactory/contracts';
import { ServiceMetrics, startTracing, requestSpans } from '@aifactory/telemetry';
import { jetstream } from '@nats-io/jetstream';
import { ApiKeyRefusalAuditor } from './auth/api-key-audit.js';
import { ApiKeyFailureLimit } from './auth/api-key-failure-limit.js';
import { ApiKeyUsageReporter, iamApiKeyUsage } from './auth/api-key-usage.js';
import { ApiKeyAuthenticator, presentedApiKey } from './auth/api-keys.js';
import { startDenyAudit } from './auth/deny-audit.js';
import { iamSignIn } from './auth/iam-sign-in.js';
import { ASSERTION_HEADER, PomeriumVerifier, type EdgeIdentity } from './auth/pomerium.js';
import { PrincipalResolver } from './auth/principal-resolver.js';
import type { GatewayConfig } from './config.js';
import { clientAddress } from './edge/client-address.js';
import { CorsPolicy } from './edge/cors.js';
import { IdempotencyStore } from './edge/idempotency.js';
import { RateLimiter, rateLimitHeaders } from './edge/rate-limiter.js';
import { policyRateLimitPolicy, rateLimitSubject, strictest } from './edge/rate-limits.js';
import { gatewayGraphQLRoute } from './graphql/graphql-route.js';
import { PreparedOperations } from './graphql/prepared-operations.js';
import { explorerRoutes } from './routes/explorer.js';
import { restForwarding, webhookForwarding } from './routes/forwarding.js';
import { statusRoute } from './routes/status.js';
import { SubgraphSource } from './subgraph-source.js';
import { EventFeeds } from './subscriptions/event-feed.js';
import { streamCarrying } from './subscriptions/streams.js';
import { subscriptionAccess } from './subscriptions/subscription-access.js';
import { SubscriptionEngine, type SubscriptionAuthorizer } from './subscriptions/subscription-engine.js';
import { attachSubscriptionServer, type AuthenticatedConnection } from './subscriptions/subscription-server.js';

/** The principal an API key's entry becomes, for benchmarks that serve the same one without a key. */
export { apiKeyPrincipal } from './auth/api-keys.js';

export interface RunningGateway {
  url: string;
  port: number;
  metrics: ServiceMetrics;
  /** Subjects with a live JetStream consumer for subscribers. */
  feeds: EventFeeds;
  /** IAM's read model as this instance sees it (tests wait on a principal's version here). */
  accessModel: AccessModelReader;
  /** The gateway's own denies, coalesced; `flush()` waits for their writes. */
  denyAuditor: DenyAuditor;
  /** Refused API keys, coalesced; `flush()` waits for their audit writes. */
  apiKeyAuditor: ApiKeyRefusalAuditor;
  /** Key last-use reports to iam; `flush()` sends what waits. */
  apiKeyUsage: ApiKeyUsageReporter;
  /** Shutdown in seed 004's order: stop taking requests and finish in-flight ones, drain NATS, close Redis, close the HTTP server. */
  close(): Promise<void>;
}

export interface GatewayOptions {
  clock?: Clock;
  /** Replaces the subscription check at subscribe and per event (tests). */
  authorizeSubscription?: SubscriptionAuthorizer;
  /**
   * Benchmarks only: every verified assertion becomes this principal, with no
   * read-model lookup, freshness check or sign-in, to measure what principal
   * resolution costs. Never set in a deployment.
   */
  fixedPrincipal?: Principal;
  /**
   * Benchmarks only: a request that carries no credential at all (no key,
   * no assertion) is served as this principal, to measure what
   * authentication itself costs. Never set in a deployment.
   */
  unauthenticatedPrincipal?: Principal;
}

/** Authorization failures counted on /metrics by code. */
const AUTHORIZATION_FAILURE_CODES: ReadonlySet<ErrorCode> = new Set([
  'AUTH_UNAUTHENTICATED',
  'AUTH_READ_MODEL_STALE',
  'AUTH_FORBIDDEN',
  'IAM_UNAVAILABLE',
  'GRAPHQL_INTROSPECTION_FORBIDDEN',
  'AUTH_API_KEY_UNKNOWN',
  'AUTH_API_KEY_REVOKED',
  'AUTH_API_KEY_EXPIRED',
  'AUTH_API_KEY_ROTATED_OUT',
  'AUTH_API_KEY_SUSPENDED',
  'AUTH_TOO_MANY_FAILURES',
]);

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
  const authorizationFailures = metrics.counter('aif_authorization_failures_total', 'Requests and subscriptions refused by the gateway for identity or access, by code', ['code']);
  const signInCalls = metrics.counter('aif_iam_sign_in_calls_total', 'Calls to iam to sign in a user on first sight or after a profile change, by outcome', ['outcome']);
  const countFailure = (error: unknown) => {
    if (isAppError(error) && AUTHORIZATION_FAILURE_CODES.has(error.code)) authorizationFailures.inc({ code: error.code });
  };

  // Followed, not read once: `npm run secrets:rotate -- internal-jwt-signing` swaps the file while we run.
  const signingKey = await openSigningKeyFile(config.INTERNAL_JWT_PRIVATE_KEY_FILE, {
    reloadMs: config.INTERNAL_JWT_KEY_RELOAD_MS,
    onError: (error) => logger.warn({ err: error }, 'internal JWT signing key could not be re-read; keeping the key read before'),
    onChange: ([kid]) => logger.info({ kid }, 'internal JWT signing key reloaded'),
  });
  const signer = new InternalTokenSigner({ issuer: config.INTERNAL_JWT_ISSUER, key: signingKey, ttlSeconds: config.INTERNAL_JWT_TTL_SECONDS });
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

  // A missing or bad pepper file stops the start here, before any connection. Re-read when the file
  // changes: a rotation's new current version is what keys are re-hashed to at their next use.
  const pepper = await PepperRing.load(config.API_KEY_PEPPER_FILE, {
    reloadEveryMs: config.API_KEY_PEPPER_RELOAD_MS,
    onReloadError: (error) => logger.error({ err: error }, 'could not re-read the API key pepper file; keeping the versions read before'),
  });
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

  const accessModel = new AccessModelReader({
    nc: nats,
    subjectPrefix: config.EVENT_SUBJECT_PREFIX,
    clock,
    logger,
    maxAgeMs: config.ACCESS_MODEL_MAX_AGE_MS,
    keys: 'all',
  });
  // Resolves once loaded, or at once while iam has never run: the gateway then starts not ready.
  await accessModel.start();
  const denyAuditor = await startDenyAudit({ nats, subjectPrefix: config.EVENT_SUBJECT_PREFIX, clock, logger, metrics });

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

  const resolver = new PrincipalResolver({
    model: accessModel,
    signIn: iamSignIn({ iamBaseUrl: () => subgraphBaseUrl('iam'), signer, timeoutMs: config.IAM_SIGN_IN_TIMEOUT_MS }),
    roleGroups: config.PLATFORM_ROLE_GROUPS,
    maxAgeMs: config.ACCESS_MODEL_MAX_AGE_MS,
    clock,
    logger,
    onSignIn: (outcome) => signInCalls.inc({ outcome }),
  });
  const limiter = new RateLimiter({
    redis,
    keyPrefix: config.REDIS_KEY_PREFIX,
    clock,
    logger,
    // Operation names are few (config), but keep the label to the policy family so it never grows with traffic.
    onDecision: (outcome, policyName) => limiterDecisions.inc({ policy: policyName.split(':', 1)[0] ?? policyName, outcome }),
  });
  const apiKeyAuditor = new ApiKeyRefusalAuditor({ js: jetstream(nats), subjectPrefix: config.EVENT_SUBJECT_PREFIX, clock, logger, metrics });
  const apiKeyUsage = new ApiKeyUsageReporter({
    send: iamApiKeyUsage({ iamBaseUrl: () => subgraphBaseUrl('iam'), signer, timeoutMs: config.API_KEY_USAGE_TIMEOUT_MS }),
    clock,
    logger,
    flushEveryMs: config.API_KEY_USAGE_FLUSH_MS,
    metrics,
  });
  apiKeyUsage.start();
  const apiKeys = new ApiKeyAuthenticator({
    model: accessModel,
    pepper,
    maxAgeMs: config.API_KEY_MODEL_MAX_AGE_MS,
    failureLimit: new ApiKeyFailureLimit(limiter, config.API_KEY_FAILURE_LIMIT, clock),
    negativeCacheMs: config.API_KEY_NEGATIVE_CACHE_MS,
    clock,
    logger,
    metrics,
    onRefused: (refusal) => apiKeyAuditor.record(refusal),
    onAccepted: (use) => apiKeyUsage.record(use),
  });
  /** A key's connection is re-judged from the read model: its entry may be revoked, re-scoped or end. */
  const keyConnection = async (presented: string, source: string, correlationId: string): Promise<AuthenticatedConnection> => {
    const { principal, keyId, endsAtMs } = await apiKeys.authenticate(presented, source, correlationId);
    return {
      principal,
      expiresAtMs: endsAtMs,
      standing: () => {
        const standing = apiKeys.standing(keyId);
        return isAppError(standing) ? standing : { principal: standing.principal, expiresAtMs: standing.endsAtMs };
      },
    };
  };

  const principalOf = async (identity: EdgeIdentity, correlationId: string): Promise<AuthenticatedConnection> => {
    const { fixedPrincipal } = options;
    if (fixedPrincipal) return { principal: fixedPrincipal, expiresAtMs: identity.exp * 1000 };
    return {
      principal: await resolver.resolve(identity, correlationId),
      expiresAtMs: identity.exp * 1000,
      current: () => resolver.current(identity),
    };
  };
  /**
   * HTTP requests and subscription connections are admitted by this one
   * check. An API key, when present, alone decides the principal
   * (ARCHITECTURE.md, Decisions: Principal), whatever assertion comes with it.
   */
  const authenticateHeaders = async (
    headers: IncomingHttpHeaders,
    request: Pick<IncomingMessage, 'headers' | 'socket'>,
    correlationId?: string,
  ): Promise<AuthenticatedConnection> => {
    try {
      const apiKey = presentedApiKey(headers.authorization);
      if (apiKey !== undefined) {
        return await keyConnection(apiKey, clientAddress(request, config.TRUSTED_PROXY_HOPS), correlationId ?? acceptCorrelationId(headers[CORRELATION_HEADER]));
      }
      const { unauthenticatedPrincipal } = options;
      if (unauthenticatedPrincipal && headers[ASSERTION_HEADER] === undefined) {
        return { principal: unauthenticatedPrincipal, expiresAtMs: clock.nowMs() + 3_600_000 };
      }
      // Without the key set no assertion can be judged: that is our outage, not the caller's fault.
      if (!verifier.ready) throw new AppError('SERVICE_NOT_READY', 'The gateway cannot verify identities yet; retry shortly');
      const header = headers[ASSERTION_HEADER];
      const identity = await verifier.verify(Array.isArray(header) ? header[0] : header);
      return await principalOf(identity, correlationId ?? acceptCorrelationId(headers[CORRELATION_HEADER]));
    } catch (error) {
      countFailure(error);
      throw error;
    }
  };
  const authenticate = async (ctx: RequestContext): Promise<Principal> => {
    try {
      const { principal } = await authenticateHeaders(ctx.req.headers, ctx.req, ctx.correlationId);
      ctx.actor = actorIdsOf(principal);
      return principal;
    } catch (error) {
      const retryAfter = isAppError(error) && error.code === 'AUTH_TOO_MANY_FAILURES' ? error.details?.retryAfterSeconds : undefined;
      if (typeof retryAfter === 'number') ctx.res.setHeader('Retry-After', String(retryAfter));
      throw error;
    }
  };
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

  const policy = policyRateLimitPolicy(config.RATE_LIMITS, () => accessModel.policy(null));
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

  /** Introspection is a role gate, not a scope: its deny carries no scope or resource. */
  const refusedIntrospection = (principal: Principal, correlationId: string) => {
    authorizationFailures.inc({ code: 'GRAPHQL_INTROSPECTION_FORBIDDEN' });
    denyAuditor.record({ principal, scope: null, resource: null, resourceId: null, correlationId, reason: 'introspection_requires_platform_role' });
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
      const missing = [...(verifier.ready ? [] : ['jwks']), ...(options.fixedPrincipal || accessModel.isFresh() ? [] : ['access_model'])];
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
        onIntrospectionRefused: refusedIntrospection,
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
  metrics.gauge('aif_access_model_age_seconds', "Seconds since iam's last heartbeat in the access read model (NaN before the first)", [], (gauge) =>
    gauge.set(secondsOrNaN(accessModel.ageMs())),
  );
  metrics.gauge('aif_access_model_principals', 'Principals loaded in the access read model', [], (gauge) => gauge.set(accessModel.stats().principals));
  metrics.gauge('aif_access_model_api_keys', 'API keys loaded in the access read model', [], (gauge) => gauge.set(accessModel.stats().apiKeys));
  metrics.gauge('aif_jwks_age_seconds', "Seconds since the identity provider's key set was last fetched (NaN before the first)", [], (gauge) =>
    gauge.set(secondsOrNaN(verifier.jwksAgeMs())),
  );
  const authorizeSubscription =
    options.authorizeSubscription ??
    subscriptionAccess({
      catalog: () => accessModel.catalog(),
      requireFresh: (principal) => (principal.apiKeyId !== undefined ? apiKeys.requireFresh() : resolver.requireFresh()),
      onDeny: (deny) => {
        authorizationFailures.inc({ code: 'AUTH_FORBIDDEN' });
        denyAuditor.record({ ...deny, resourceId: null, registryVersions: accessModel.catalog()?.registryVersions ?? {} });
      },
    });
  const subscriptions = attachSubscriptionServer({
    server: http.server,
    path: '/graphql',
    schema,
    operations,
    engine: new SubscriptionEngine({
      gateway,
      feeds,
      authorize: authorizeSubscription,
      formatError,
      logger,
      maxPendingEvents: config.SUBSCRIPTION_MAX_PENDING_EVENTS,
    }),
    authorize: authorizeSubscription,
    onPrincipalChange: (listener) => accessModel.onPrincipalChange((entry) => listener(entry.userId)),
    onApiKeyChange: (listener) => accessModel.onApiKeyChange((keyId) => listener(keyId)),
    onIntrospectionRefused: refusedIntrospection,
    cors,
    authenticate: (headers, request) => authenticateHeaders(headers, request),
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
    accessModel,
    denyAuditor,
    apiKeyAuditor,
    apiKeyUsage,
    close: () => {
      closing ??= (async () => {
        stopLoading.abort();
        await subscriptions.close();
        await http.drain();
        await feeds.close();
        pepper.close();
        signingKey.close();
        apiKeys.close();
        await apiKeyUsage.close();
        await accessModel.stop();
        await denyAuditor.flush();
        await apiKeyAuditor.flush();
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

function secondsOrNaN(ms: number | null): number {
  return ms === null ? Number.NaN : ms / 1000;
}
