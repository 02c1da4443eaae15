import { STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { GraphQLError, getArgumentValues, getVariableValues, type ExecutionArgs, type ExecutionResult, type FieldNode, type GraphQLSchema } from 'graphql';
import { makeServer, type Context } from 'graphql-ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { AppError, ERROR_CODES, isAppError, toPublicError, type ErrorCode } from '@aifactory/errors';
import { acceptCorrelationId, type Logger } from '@aifactory/logging';
import { CORRELATION_HEADER } from '@aifactory/http';
import type { Principal } from '@aifactory/service-auth';
import { ASSERTION_HEADER } from '../auth/pomerium.js';
import type { CorsPolicy } from '../edge/cors.js';
import { canIntrospect } from '../graphql/graphql-route.js';
import { DocumentRefused, type PreparedOperations } from '../graphql/prepared-operations.js';
import { subscriptionSource } from './sources.js';
import { SubscriptionEnded, type SubscriptionAuthorizer, type SubscriptionEngine, type SubscriptionRequest } from './subscription-engine.js';

/** graphql-ws close codes of ours (4000-4999 are the application's). */
export const CLOSE_CREDENTIAL_EXPIRED = 4401;
export const CLOSE_TOO_SLOW = 4413;
/** connection_init could not be judged right now (stale read model, iam away): graphql-ws clients retry this code. */
export const CLOSE_TRY_AGAIN = 4503;
/** Failures of ours, not the caller's: the client may retry the same credential. */
const RETRYABLE_AUTH_CODES: ReadonlySet<ErrorCode> = new Set(['AUTH_READ_MODEL_STALE', 'IAM_UNAVAILABLE', 'SERVICE_NOT_READY']);
const TOO_SLOW_CLOSE_GRACE_MS = 10_000;
/** After a withdrawn credential's subscriptions got their final error, the socket is closed this much later, so that error goes out first. */
const REFUSED_CLOSE_DELAY_MS = 1_000;
/** setTimeout's longest delay; a later expiry is waited for in steps. */
const MAX_TIMER_MS = 2_147_483_647;

export interface AuthenticatedConnection {
  principal: Principal;
  /** When the credential stops being valid, in epoch ms. */
  expiresAtMs: number;
  /**
   * The same identity's principal as the read model has it now (undefined
   * once it knows them no longer): a subscription is re-checked against it.
   */
  current?(): Principal | undefined;
  /**
   * For a credential the read model can withdraw or change (an API key): how
   * it stands now, its principal and when it ends by itself, or the refusal it
   * would get. Asked at subscribe, when its entry changes and when it ends.
   */
  standing?(): { principal: Principal; expiresAtMs: number } | AppError;
}

export interface SubscriptionServerOptions {
  server: Server;
  path: string;
  schema: GraphQLSchema;
  operations: PreparedOperations;
  engine: SubscriptionEngine;
  /** Decides at subscribe, and again when the subscriber's grants change; the engine asks it per event. */
  authorize: SubscriptionAuthorizer;
  /** Tells of a changed principal by its subject (IAM's user id); returns the unsubscribe function. */
  onPrincipalChange?(listener: (subject: string) => void): () => void;
  /** Tells of a changed (or removed) API key entry by its key id; returns the unsubscribe function. */
  onApiKeyChange?(listener: (keyId: string) => void): () => void;
  /** Told of each refused introspection (the gateway audits it as a deny). */
  onIntrospectionRefused?(principal: Principal, correlationId: string): void;
  cors: CorsPolicy;
  /**
   * The same check HTTP requests pass, on the upgrade's headers (or the
   * credentials of connection_init); `request` is the upgrade, for the
   * client's address.
   */
  authenticate(headers: IncomingHttpHeaders, request: IncomingMessage): Promise<AuthenticatedConnection>;
  subjectPrefix: string | undefined;
  /** A subscriber whose socket holds more unsent bytes than this is disconnected. */
  maxBufferedBytes: number;
  logger: Logger;
}

interface ConnectionState {
  connection: AuthenticatedConnection;
  correlationId: string;
  socket: WebSocket;
  expiry?: NodeJS.Timeout;
  /** Set once a withdrawn credential's subscriptions were ended. */
  refused?: AppError;
  /** Running subscriptions by their graphql-ws id. */
  running: Map<string, { abort: AbortController; request: SubscriptionRequest }>;
}

/** What onSubscribe hands to subscribe: graphql-ws passes it through as the execution context. */
interface SubscriptionContext {
  id: string;
  request: SubscriptionRequest;
  state: ConnectionState;
}

function graphQLErrors(error: AppError, correlationId: string): GraphQLError[] {
  const { code, message } = toPublicError(error, correlationId);
  return [new GraphQLError(message, { extensions: { code, correlationId } })];
}

/**
 * graphql-ws on the gateway's HTTP server at /graphql (ARCHITECTURE.md,
 * Decisions: Subscriptions): the upgrade is refused unless its Origin is
 * allowed and its credential passes the same check as an HTTP request; a
 * credential sent again in connection_init must name the same principal.
 * Each subscription is prepared like an HTTP operation (limits, validation,
 * introspection by role) and then fed from JetStream.
 */
export function attachSubscriptionServer(options: SubscriptionServerOptions): { close(): Promise<void> } {
  const { logger } = options;
  const wss = new WebSocketServer({ noServer: true });
  const states = new WeakMap<IncomingMessage, ConnectionState>();
  /** Open connections by principal subject, so a changed principal's subscriptions are found at once. */
  const bySubject = new Map<string, Set<ConnectionState>>();
  /** Open connections by API key id, so a revoked or changed key's subscriptions are found at once. */
  const byKey = new Map<string, Set<ConnectionState>>();

  const principalOf = (state: ConnectionState): Principal => {
    const { connection } = state;
    if (connection.standing !== undefined) {
      const standing = connection.standing();
      return isAppError(standing) ? holdingNothing(connection.principal) : standing.principal;
    }
    if (connection.current === undefined) return connection.principal;
    // Unknown to the read model now: holding nothing is the closed way to fail.
    return connection.current() ?? holdingNothing(connection.principal);
  };

  const addTo = (index: Map<string, Set<ConnectionState>>, key: string, state: ConnectionState) => {
    let set = index.get(key);
    if (set === undefined) index.set(key, (set = new Set()));
    set.add(state);
  };
  const removeFrom = (index: Map<string, Set<ConnectionState>>, key: string, state: ConnectionState) => {
    const set = index.get(key);
    set?.delete(state);
    if (set?.size === 0) index.delete(key);
  };
  const track = (state: ConnectionState) => {
    const { subject, apiKeyId } = state.connection.principal;
    if (apiKeyId !== undefined) addTo(byKey, apiKeyId, state);
    else addTo(bySubject, subject, state);
  };
  const untrack = (state: ConnectionState) => {
    const { subject, apiKeyId } = state.connection.principal;
    if (apiKeyId !== undefined) removeFrom(byKey, apiKeyId, state);
    else removeFrom(bySubject, subject, state);
  };

  /** Each subscription of the connection its principal may no longer see ends with the refusal. */
  const reauthorize = async (state: ConnectionState) => {
    for (const [id, { abort, request }] of state.running) {
      const denied = await options.authorize(principalOf(state), request, undefined);
      if (denied === undefined) continue;
      logger.info({ correlationId: state.correlationId, subscription: id, code: denied.code }, 'subscription ended: access changed');
      abort.abort(denied);
    }
  };

  /**
   * A credential withdrawn (a revoked, expired, rotated-out or removed key):
   * every subscription on it ends with the refusal as its final error, new
   * ones are refused, and the socket is closed once those errors went out.
   */
  const endRefused = (state: ConnectionState, error: AppError) => {
    if (state.refused !== undefined) return;
    state.refused = error;
    clearTimeout(state.expiry);
    logger.info({ correlationId: state.correlationId, apiKeyId: state.connection.principal.apiKeyId, code: error.code }, 'subscriptions ended: credential no longer valid');
    for (const { abort } of state.running.values()) abort.abort(error);
    setTimeout(() => state.socket.close(CLOSE_CREDENTIAL_EXPIRED, error.code), REFUSED_CLOSE_DELAY_MS).unref();
  };

  /** A key whose entry changed: withdrawn, or still valid with maybe other scopes and another end. */
  const recheckKey = async (state: ConnectionState) => {
    const standing = state.connection.standing?.();
    if (standing === undefined || state.refused !== undefined) return;
    if (isAppError(standing)) {
      endRefused(state, standing);
      return;
    }
    armExpiry(state, standing.expiresAtMs);
    await reauthorize(state);
  };

  /** Closes the connection when its credential ends; a withdrawable one first ends its subscriptions with the reason. */
  const armExpiry = (state: ConnectionState, expiresAtMs: number) => {
    clearTimeout(state.expiry);
    state.expiry = undefined;
    if (!Number.isFinite(expiresAtMs)) return;
    const remaining = expiresAtMs - Date.now();
    state.expiry = setTimeout(
      () => {
        if (remaining > MAX_TIMER_MS) {
          armExpiry(state, expiresAtMs);
          return;
        }
        if (state.connection.standing !== undefined) {
          recheckKey(state).catch((error: unknown) => logger.error({ err: error, correlationId: state.correlationId }, 'subscription re-check failed'));
          return;
        }
        logger.info({ correlationId: state.correlationId }, 'subscription credential expired; closing');
        state.socket.close(CLOSE_CREDENTIAL_EXPIRED, 'AUTH_CREDENTIAL_EXPIRED');
      },
      Math.min(MAX_TIMER_MS, Math.max(0, remaining)),
    );
    state.expiry.unref();
  };

  const stopWatching = options.onPrincipalChange?.((subject) => {
    for (const state of bySubject.get(subject) ?? []) {
      reauthorize(state).catch((error: unknown) => logger.error({ err: error, subject }, 'subscription re-check failed'));
    }
  });
  const stopWatchingKeys = options.onApiKeyChange?.((keyId) => {
    for (const state of byKey.get(keyId) ?? []) {
      recheckKey(state).catch((error: unknown) => logger.error({ err: error, apiKeyId: keyId }, 'subscription re-check failed'));
    }
  });

  const refuseUpgrade = (socket: Duplex, status: number, error: AppError, correlationId: string) => {
    const body = JSON.stringify({ error: toPublicError(error, correlationId) });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: application/json\r\n${CORRELATION_HEADER}: ${correlationId}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
    logger.warn({ path: options.path, status, code: error.code, errorClass: error.errorClass, correlationId }, 'subscription connection refused');
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== options.path) {
      socket.destroy();
      return;
    }
    const correlationId = acceptCorrelationId(req.headers[CORRELATION_HEADER]);
    if (!options.cors.allows(req.headers.origin, req.headers.host)) {
      refuseUpgrade(socket, 403, new AppError('BAD_REQUEST_ORIGIN_NOT_ALLOWED', 'Connections from this origin are not allowed'), correlationId);
      return;
    }
    options
      .authenticate(req.headers, req)
      .then((connection) => {
        wss.handleUpgrade(req, socket, head, (ws) => {
          states.set(req, { connection, correlationId, socket: ws, running: new Map() });
          wss.emit('connection', ws, req);
        });
      })
      .catch((error: unknown) => {
        const refusal = isAppError(error) ? error : new AppError('AUTH_UNAUTHENTICATED', 'Authentication required');
        refuseUpgrade(socket, ERROR_CODES[refusal.code].http, refusal, correlationId);
      });
  };
  options.server.on('upgrade', onUpgrade);

  const stateOf = (ctx: Context): ConnectionState => {
    const state = states.get((ctx.extra as { request: IncomingMessage }).request);
    if (!state) throw new AppError('INTERNAL_ERROR', 'Subscription connection without state');
    return state;
  };

  const graphqlWs = makeServer<Record<string, unknown> | undefined, { request: IncomingMessage; socket: WebSocket }>({
    schema: options.schema,
    onConnect: async (ctx) => {
      const state = stateOf(ctx);
      const credentials = connectionCredentials(ctx.connectionParams);
      if (credentials !== undefined) {
        try {
          const again = await options.authenticate(credentials, (ctx.extra as { request: IncomingMessage }).request);
          // The same principal through the same credential: a key cannot be swapped for a person, or for another key.
          if (again.principal.subject !== state.connection.principal.subject || again.principal.apiKeyId !== state.connection.principal.apiKeyId) return false;
          state.connection = again;
        } catch (error) {
          // graphql-ws answers `false` with 4403, which says "not you"; an outage of ours gets a code clients retry.
          if (isAppError(error) && RETRYABLE_AUTH_CODES.has(error.code)) state.socket.close(CLOSE_TRY_AGAIN, error.code);
          return false;
        }
      }
      armExpiry(state, state.connection.expiresAtMs);
      return true;
    },
    onSubscribe: async (ctx, id, payload) => {
      const state = stateOf(ctx);
      const principal = principalOf(state);
      try {
        const standing = state.refused ?? state.connection.standing?.();
        if (isAppError(standing)) throw standing;
        const prepared = options.operations.prepare(payload.query, payload.operationName ?? undefined);
        if (prepared.shape.introspection && !canIntrospect(principal)) {
          options.onIntrospectionRefused?.(principal, state.correlationId);
          throw new AppError('GRAPHQL_INTROSPECTION_FORBIDDEN', 'Introspection is for internal developers and platform admins');
        }
        if (prepared.operation.operation !== 'subscription') {
          throw new AppError('GRAPHQL_BAD_REQUEST', 'Only subscriptions are served over graphql-ws; send queries and mutations over HTTP');
        }
        const coerced = getVariableValues(options.schema, prepared.operation.variableDefinitions ?? [], payload.variables ?? {});
        if (coerced.errors) throw new AppError('BAD_REQUEST_INVALID_INPUT', coerced.errors[0]?.message ?? 'Invalid variables');
        const rootField = prepared.operation.selectionSet.selections[0] as FieldNode;
        const source = subscriptionSource(rootField.name.value, options.subjectPrefix);
        if (!source) throw new AppError('GRAPHQL_BAD_REQUEST', `${rootField.name.value} has no event source`);
        const fieldDefinition = options.schema.getSubscriptionType()?.getFields()[rootField.name.value];
        if (!fieldDefinition) throw new AppError('GRAPHQL_VALIDATION_FAILED', `Unknown subscription ${rootField.name.value}`);
        const request: SubscriptionRequest = {
          prepared,
          variables: coerced.coerced,
          args: getArgumentValues(fieldDefinition, rootField, coerced.coerced),
          rootField,
          source,
          principal: () => principalOf(state),
          correlationId: state.correlationId,
        };
        const denied = await options.authorize(principal, request, undefined);
        if (denied !== undefined) throw denied;
        const contextValue: SubscriptionContext = { id, request, state };
        const args: ExecutionArgs = { schema: options.schema, document: prepared.document, contextValue, variableValues: coerced.coerced };
        return args;
      } catch (error) {
        if (error instanceof DocumentRefused) {
          return error.problems.map((problem) => new GraphQLError(problem.message, { extensions: { code: problem.code, correlationId: state.correlationId } }));
        }
        return graphQLErrors(isAppError(error) ? error : new AppError('INTERNAL_ERROR', 'Internal error', { cause: error }), state.correlationId);
      }
    },
    subscribe: (args) => stream(args.contextValue as SubscriptionContext),
  });

  /** A subscriber that cannot keep up is disconnected with a code instead of buffered without bound. */
  const disconnectTooSlow = (state: ConnectionState) => {
    logger.warn({ correlationId: state.correlationId, buffered: state.socket.bufferedAmount }, 'subscriber too slow; closing');
    state.socket.close(CLOSE_TOO_SLOW, 'SUBSCRIPTION_CLIENT_TOO_SLOW');
    // The close frame waits behind what the client has not read; one that never reads is cut off.
    setTimeout(() => state.socket.terminate(), TOO_SLOW_CLOSE_GRACE_MS).unref();
  };

  const stream = async function* ({ id, request, state }: SubscriptionContext): AsyncGenerator<ExecutionResult> {
    const abort = new AbortController();
    state.running.set(id, { abort, request });
    try {
      for await (const result of options.engine.run(request, () => disconnectTooSlow(state), abort.signal)) {
        if (state.socket.bufferedAmount > options.maxBufferedBytes) {
          disconnectTooSlow(state);
          return;
        }
        yield result;
      }
    } catch (error) {
      if (!(error instanceof SubscriptionEnded)) throw error;
      yield { errors: graphQLErrors(error.error, state.correlationId) };
    } finally {
      state.running.delete(id);
    }
  };

  /**
   * graphql-ws ends a subscription by awaiting its iterator's return(), which
   * an async generator only honours at its next event; so a stream is aborted
   * here first, when the client completes it or the connection closes.
   */
  const abortCompleted = (state: ConnectionState | undefined, message: string) => {
    if (!state || !message.includes('"complete"')) return;
    try {
      const parsed = JSON.parse(message) as { type?: unknown; id?: unknown };
      if (parsed.type === 'complete' && typeof parsed.id === 'string') state.running.get(parsed.id)?.abort.abort();
    } catch {
      // graphql-ws itself answers a message that is not JSON
    }
  };

  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    const opened = states.get(request);
    if (opened) track(opened);
    const closed = graphqlWs.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            socket.send(data, (error) => (error ? reject(error) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (cb) =>
          socket.on('message', (data) => {
            const message = String(data);
            abortCompleted(states.get(request), message);
            void cb(message).catch((error: unknown) => logger.error({ err: error }, 'subscription message failed'));
          }),
      },
      { request, socket },
    );
    socket.once('close', (code, reason) => {
      const state = states.get(request);
      if (state) {
        clearTimeout(state.expiry);
        untrack(state);
        for (const { abort } of state.running.values()) abort.abort();
      }
      void closed(code, String(reason));
    });
  });

  return {
    close: async () => {
      options.server.off('upgrade', onUpgrade);
      stopWatching?.();
      stopWatchingKeys?.();
      for (const client of wss.clients) client.close(1001, 'Server shutting down');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** A principal the read model no longer vouches for: holding nothing is the closed way to fail. */
function holdingNothing(principal: Principal): Principal {
  return { ...principal, platformRoles: [], grants: [], ...(principal.scopes !== undefined ? { scopes: [] } : {}) };
}

/**
 * The credentials connection_init may carry again (browsers cannot set
 * headers on a WebSocket): the Pomerium assertion, or an API key as
 * `authorization: "Bearer <key>"`.
 */
function connectionCredentials(params: Record<string, unknown> | undefined): IncomingHttpHeaders | undefined {
  if (params === undefined) return undefined;
  const assertion = params[ASSERTION_HEADER];
  const authorization = params.authorization ?? params.Authorization;
  const headers: IncomingHttpHeaders = {};
  if (typeof assertion === 'string') headers[ASSERTION_HEADER] = assertion;
  if (typeof authorization === 'string') headers.authorization = authorization;
  return Object.keys(headers).length === 0 ? undefined : headers;
}
