import { createHash } from 'node:crypto';
import type { GatewayExecutor } from '@apollo/server-gateway-interface';
import { getVariableValues, type GraphQLError, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { AppError, ERROR_CODES, type ErrorCode } from '@aifactory/errors';
import {
  IDEMPOTENCY_KEY_HEADER,
  parseJsonBody,
  readBody,
  sendGraphQLError,
  sendJson,
  validateIdempotencyKey,
  type RequestContext,
  type RouteHandler,
} from '@aifactory/http';
import type { Logger } from '@aifactory/logging';
import { hasPlatformRole, type Principal } from '@aifactory/service-auth';
import type { IdempotencyLease, IdempotencyStore, StoredResponse } from '../edge/idempotency.js';
import { rateLimitHeaders, type RateLimitDecision, type RateLimiter } from '../edge/rate-limiter.js';
import { rateLimitSubject, strictest, type RateLimitPolicy } from '../edge/rate-limits.js';
import type { GatewayContext } from '../subgraph-source.js';
import { DocumentRefused, type DocumentProblem, type PreparedOperation, type PreparedOperations } from './prepared-operations.js';
import { gatewayRequestContext } from './request-context.js';
import { requireJsonPost } from './transport.js';

export interface GraphQLRouteDeps {
  authenticate(ctx: RequestContext): Promise<Principal>;
  operations: PreparedOperations;
  /** The API schema the operations are validated against. */
  schema: GraphQLSchema;
  executor: GatewayExecutor;
  limiter: RateLimiter;
  policy: RateLimitPolicy;
  idempotency: IdempotencyStore;
  /** `Mutation.createApiKey`: answers that reveal a secret are never stored for replay. */
  secretFields: ReadonlySet<string>;
  bodyLimitBytes: number;
  logger: Logger;
  formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError;
  /** Told of each refused introspection (the gateway audits it as a deny). */
  onIntrospectionRefused?(principal: Principal, correlationId: string): void;
}

interface GraphQLBody {
  query: string;
  operationName: string | undefined;
  variables: Record<string, unknown> | undefined;
}

/** Failures after which the same request may well succeed: a stored answer would make them permanent. */
const RETRYABLE_CLASSES = new Set(['retryable_infra', 'upstream']);

export function canIntrospect(principal: Principal): boolean {
  return hasPlatformRole(principal, 'internal_developer') || hasPlatformRole(principal, 'platform_admin');
}

function readGraphQLBody(raw: Buffer): GraphQLBody {
  const body = parseJsonBody(raw);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new AppError('GRAPHQL_BAD_REQUEST', 'A GraphQL request body must be a JSON object');
  }
  const { query, operationName, variables } = body as Record<string, unknown>;
  if (typeof query !== 'string' || query.length === 0) {
    throw new AppError('GRAPHQL_BAD_REQUEST', 'The request must carry the operation as a non-empty string in "query"');
  }
  if (operationName !== undefined && operationName !== null && typeof operationName !== 'string') {
    throw new AppError('GRAPHQL_BAD_REQUEST', '"operationName" must be a string');
  }
  if (variables !== undefined && variables !== null && (typeof variables !== 'object' || Array.isArray(variables))) {
    throw new AppError('GRAPHQL_BAD_REQUEST', '"variables" must be a JSON object');
  }
  return {
    query,
    operationName: operationName ?? undefined,
    variables: (variables as Record<string, unknown> | null) ?? undefined,
  };
}

/** Same principal, key and request: the fingerprint ignores JSON formatting but not a changed value. */
function fingerprintOf(body: GraphQLBody): string {
  const canonical = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(canonical);
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.keys(value).sort().map((key) => [key, canonical((value as Record<string, unknown>)[key])]));
    }
    return value;
  };
  return createHash('sha256')
    .update(JSON.stringify([body.query, body.operationName ?? null, canonical(body.variables ?? {})]))
    .digest('hex');
}

/**
 * `POST /graphql` on the gateway. Everything that can refuse a request runs
 * before the query planner, cheapest first: authentication, transport and
 * body size, the principal's rate limit, parse with the token limit, the
 * operation limits, validation, introspection by role, the operation's own
 * rate limit, variables, and the idempotency key. Only then is a subgraph
 * called.
 */
export function gatewayGraphQLRoute(deps: GraphQLRouteDeps): RouteHandler {
  const refuse = (ctx: RequestContext, error: AppError, headers: Record<string, string> = {}) => {
    ctx.failure = error;
    sendGraphQLError(ctx.res, error, ctx.correlationId, headers);
  };

  const refuseDocument = (ctx: RequestContext, problems: DocumentProblem[], headers: Record<string, string>) => {
    const first = problems[0];
    const code: ErrorCode = first?.code ?? 'GRAPHQL_BAD_REQUEST';
    ctx.failure = new AppError(code, first?.message ?? 'Document refused', { details: { problems: problems.length } });
    const errors = problems.map((problem) => ({
      message: problem.message,
      ...(problem.locations ? { locations: problem.locations } : {}),
      extensions: { code: problem.code, correlationId: ctx.correlationId },
    }));
    sendJson(ctx.res, ERROR_CODES[code].http, { errors }, headers);
  };

  const execute = async (
    ctx: RequestContext,
    principal: Principal,
    body: GraphQLBody,
    prepared: PreparedOperation,
    idempotencyKey: string | undefined,
  ): Promise<StoredResponse> => {
    const context: GatewayContext = {
      principal,
      correlationId: ctx.correlationId,
      internalTokens: new Map(),
      ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
    };
    const requestContext = gatewayRequestContext({
      prepared,
      query: body.query,
      variables: body.variables ?? {},
      context,
      schema: deps.schema,
      logger: deps.logger,
    });
    const result = await deps.executor(requestContext);
    const errors = result.errors?.map((error: GraphQLError) => deps.formatError(error.toJSON(), error));
    const firstCode = errors?.[0]?.extensions?.code;
    if (typeof firstCode === 'string' && Object.hasOwn(ERROR_CODES, firstCode)) {
      ctx.failure = new AppError(firstCode as ErrorCode, errors?.[0]?.message ?? firstCode);
    }
    const payload = errors ? { errors, data: result.data } : { data: result.data };
    return { status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(payload) };
  };

  /**
   * The mutation ran: its answer is the client's whatever happens here. If
   * Redis fails now, the claim simply expires after its in-flight lifetime.
   */
  const settle = async (lease: IdempotencyLease, ctx: RequestContext, prepared: PreparedOperation, response: StoredResponse) => {
    const failure = ctx.failure instanceof AppError ? ctx.failure : undefined;
    try {
      if (failure && RETRYABLE_CLASSES.has(failure.errorClass)) await lease.abandon();
      else if (revealsSecret(prepared, deps.secretFields)) await lease.complete({ secretShown: true });
      else await lease.complete(response);
    } catch (error) {
      deps.logger.error({ err: error }, 'could not store the idempotent response; the key expires with its claim');
    }
  };

  return async (ctx) => {
    let principal: Principal;
    try {
      principal = await deps.authenticate(ctx);
    } catch (error) {
      refuse(ctx, error instanceof AppError ? error : new AppError('INTERNAL_ERROR', 'Internal error', { cause: error }));
      return;
    }
    let headers: Record<string, string> = {};
    try {
      requireJsonPost(ctx.req);
      const body = readGraphQLBody(await readBody(ctx.req, deps.bodyLimitBytes));
      if (body.operationName) ctx.operation = body.operationName;

      const subject = rateLimitSubject(principal);
      const decisions: RateLimitDecision[] = [await deps.limiter.check(subject, 'graphql', deps.policy.principalRule(principal))];
      headers = rateLimitHeaders(strictest(decisions));
      if (decisions[0]?.outcome === 'limited') {
        refuse(ctx, new AppError('RATE_LIMIT_EXCEEDED', 'Too many requests; retry after the time in Retry-After'), headers);
        return;
      }

      let prepared: PreparedOperation;
      try {
        prepared = deps.operations.prepare(body.query, body.operationName);
      } catch (error) {
        if (!(error instanceof DocumentRefused)) throw error;
        refuseDocument(ctx, error.problems, headers);
        return;
      }
      if (prepared.operationName) ctx.operation = prepared.operationName;
      if (prepared.shape.introspection && !canIntrospect(principal)) {
        deps.onIntrospectionRefused?.(principal, ctx.correlationId);
        refuse(ctx, new AppError('GRAPHQL_INTROSPECTION_FORBIDDEN', 'Introspection is for internal developers and platform admins'), headers);
        return;
      }
      if (prepared.operation.operation === 'subscription') {
        refuse(ctx, new AppError('GRAPHQL_BAD_REQUEST', 'Subscriptions are served over graphql-ws on this endpoint'), headers);
        return;
      }

      const operationRule = prepared.operationName ? deps.policy.operationRule(principal, prepared.operationName) : undefined;
      if (operationRule && prepared.operationName) {
        decisions.push(await deps.limiter.check(subject, `operation:${prepared.operationName}`, operationRule));
        const decision = strictest(decisions);
        headers = rateLimitHeaders(decision);
        if (decision.outcome === 'limited') {
          refuse(ctx, new AppError('RATE_LIMIT_EXCEEDED', `Too many ${prepared.operationName} requests; retry after the time in Retry-After`), headers);
          return;
        }
      }

      const coerced = getVariableValues(deps.schema, prepared.operation.variableDefinitions ?? [], body.variables ?? {}, { maxErrors: 20 });
      if (coerced.errors) {
        refuseDocument(ctx, coerced.errors.map((error) => ({ code: 'BAD_REQUEST_INVALID_INPUT', message: error.message, ...(error.locations ? { locations: error.locations } : {}) })), headers);
        return;
      }

      const idempotencyKey = prepared.operation.operation === 'mutation' ? validateIdempotencyKey(ctx.req.headers[IDEMPOTENCY_KEY_HEADER]) : undefined;
      let lease: IdempotencyLease | undefined;
      if (idempotencyKey) {
        const begun = await deps.idempotency.begin(subject, idempotencyKey, fingerprintOf(body));
        if (begun.kind === 'replay') {
          ctx.res.setHeader('idempotent-replayed', 'true');
          ctx.res.writeHead(begun.response.status, { ...begun.response.headers, ...headers });
          ctx.res.end(begun.response.body);
          return;
        }
        lease = begun.lease;
      }

      let response: StoredResponse;
      try {
        response = await execute(ctx, principal, body, prepared, idempotencyKey);
      } catch (error) {
        await lease?.abandon();
        throw error;
      }
      if (lease) await settle(lease, ctx, prepared, response);
      ctx.res.writeHead(response.status, { ...response.headers, ...headers });
      ctx.res.end(response.body);
    } catch (error) {
      refuse(ctx, error instanceof AppError ? error : new AppError('INTERNAL_ERROR', 'Internal error', { cause: error }), headers);
    }
  };
}

function revealsSecret(prepared: PreparedOperation, secretFields: ReadonlySet<string>): boolean {
  if (secretFields.size === 0) return false;
  return prepared.operation.selectionSet.selections.some(
    (selection) => selection.kind === 'Field' && secretFields.has(`Mutation.${selection.name.value}`),
  );
}
