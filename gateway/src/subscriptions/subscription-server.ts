import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { GraphQLError, getArgumentValues, getVariableValues, type ExecutionArgs, type ExecutionResult, type FieldNode, type GraphQLSchema } from 'graphql';
import { makeServer, type Context } from 'graphql-ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { AppError, isAppError, toPublicError } from '@aifactory/errors';
import { acceptCorrelationId, type Logger } from '@aifactory/logging';
import { CORRELATION_HEADER } from '@aifactory/http';
import type { Principal } from '@aifactory/service-auth';
import { ASSERTION_HEADER } from '../auth/pomerium.js';
import type { CorsPolicy } from '../edge/cors.js';
import { canIntrospect } from '../graphql/graphql-route.js';
import { DocumentRefused, type PreparedOperations } from '../graphql/prepared-operations.js';
import { subscriptionSource } from './sources.js';
import { SubscriptionEnded, type SubscriptionEngine, type SubscriptionRequest } from './subscription-engine.js';

/** graphql-ws close codes of ours (4000-4999 are the application's). */
export const CLOSE_CREDENTIAL_EXPIRED = 4401;
export const CLOSE_TOO_SLOW = 4413;
const TOO_SLOW_CLOSE_GRACE_MS = 10_000;

export interface AuthenticatedConnection {
  principal: Principal;
  /** When the credential stops being valid, in epoch ms. */
  expiresAtMs: number;
}

export interface SubscriptionServerOptions {
  server: Server;
  path: string;
  schema: GraphQLSchema;
  operations: PreparedOperations;
  engine: SubscriptionEngine;
  cors: CorsPolicy;
  /** The same check HTTP requests pass, on the upgrade's headers. */
  authenticate(headers: IncomingMessage['headers']): Promise<AuthenticatedConnection>;
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
  /** One per running subscription, by its graphql-ws id. */
  aborts: Map<string, AbortController>;
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

  const refuseUpgrade = (socket: Duplex, status: number, error: AppError, correlationId: string) => {
    const body = JSON.stringify({ error: toPublicError(error, correlationId) });
    socket.end(
      `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : 'Forbidden'}\r\ncontent-type: application/json\r\n${CORRELATION_HEADER}: ${correlationId}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
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
      .authenticate(req.headers)
      .then((connection) => {
        wss.handleUpgrade(req, socket, head, (ws) => {
          states.set(req, { connection, correlationId, socket: ws, aborts: new Map() });
          wss.emit('connection', ws, req);
        });
      })
      .catch((error: unknown) => {
        refuseUpgrade(socket, 401, isAppError(error) ? error : new AppError('AUTH_UNAUTHENTICATED', 'Authentication required'), correlationId);
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
      const assertion = ctx.connectionParams?.[ASSERTION_HEADER];
      if (typeof assertion === 'string') {
        try {
          const again = await options.authenticate({ [ASSERTION_HEADER]: assertion });
          if (again.principal.subject !== state.connection.principal.subject) return false;
          state.connection = again;
        } catch {
          return false;
        }
      }
      const remaining = state.connection.expiresAtMs - Date.now();
      state.expiry = setTimeout(() => {
        logger.info({ correlationId: state.correlationId }, 'subscription credential expired; closing');
        state.socket.close(CLOSE_CREDENTIAL_EXPIRED, 'AUTH_CREDENTIAL_EXPIRED');
      }, Math.max(0, remaining));
      state.expiry.unref();
      return true;
    },
    onSubscribe: (ctx, id, payload) => {
      const state = stateOf(ctx);
      const { principal } = state.connection;
      try {
        const prepared = options.operations.prepare(payload.query, payload.operationName ?? undefined);
        if (prepared.shape.introspection && !canIntrospect(principal)) {
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
          principal,
          correlationId: state.correlationId,
        };
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
    state.aborts.set(id, abort);
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
      state.aborts.delete(id);
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
      if (parsed.type === 'complete' && typeof parsed.id === 'string') state.aborts.get(parsed.id)?.abort();
    } catch {
      // graphql-ws itself answers a message that is not JSON
    }
  };

  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
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
        for (const abort of state.aborts.values()) abort.abort();
      }
      void closed(code, String(reason));
    });
  });

  return {
    close: async () => {
      options.server.off('upgrade', onUpgrade);
      for (const client of wss.clients) client.close(1001, 'Server shutting down');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
