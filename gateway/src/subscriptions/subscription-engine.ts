import { buildOperationContext, executeQueryPlan, type ApolloGateway, type GraphQLDataSource, type ServiceMap } from '@apollo/gateway';
import { operationFromDocument } from '@apollo/federation-internals';
import type { FetchNode, QueryPlan, QueryPlanner } from '@apollo/query-planner';
import { Kind, parse, type ExecutionResult, type FieldNode, type GraphQLFormattedError, type GraphQLSchema, type SelectionSetNode } from 'graphql';
import type { EventEnvelope } from '@aifactory/contracts';
import { AppError, isAppError } from '@aifactory/errors';
import type { Logger } from '@aifactory/logging';
import type { Principal } from '@aifactory/service-auth';
import type { PreparedOperation } from '../graphql/prepared-operations.js';
import { gatewayRequestContext } from '../graphql/request-context.js';
import type { GatewayContext } from '../subgraph-source.js';
import type { EventFeeds } from './event-feed.js';
import type { SubscriptionSource } from './sources.js';

/** The events' own stand-in for the owning subgraph: it answers the plan's Primary fetch. */
const PAYLOAD_SERVICE = '__subscription_event__';

/**
 * Decides, at subscribe (no event) and again for every event, whether the
 * principal may see the subscription: undefined allows, an error refuses or
 * ends it with that error (ARCHITECTURE.md, Decisions: Subscriptions).
 */
export type SubscriptionAuthorizer = (
  principal: Principal,
  request: SubscriptionRequest,
  event: EventEnvelope | undefined,
) => AppError | undefined | Promise<AppError | undefined>;

/** The gateway's planner and schemas; @apollo/gateway keeps them private but executes with exactly these. */
interface GatewayInternals {
  queryPlanner: QueryPlanner;
  apiSchema: Parameters<typeof operationFromDocument>[0];
  supergraphSchema: GraphQLSchema;
  schema: GraphQLSchema;
  serviceMap: Record<string, { dataSource: GraphQLDataSource }>;
}

export interface SubscriptionRequest {
  prepared: PreparedOperation;
  variables: Record<string, unknown>;
  args: Record<string, unknown>;
  rootField: FieldNode;
  source: SubscriptionSource;
  /** The subscriber as the read model has them now: a change of their grants applies to the next event. */
  principal(): Principal;
  correlationId: string;
}

export interface SubscriptionEngineOptions {
  gateway: ApolloGateway;
  feeds: EventFeeds;
  authorize: SubscriptionAuthorizer;
  formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError;
  logger: Logger;
  /** Events waiting for one slow subscriber before it is disconnected. */
  maxPendingEvents: number;
}

interface CompiledSubscription {
  plan: QueryPlan;
  /** The Primary fetch's root fields, answered from each event's payload. */
  rootFields: readonly FieldNode[];
  operationContext: ReturnType<typeof buildOperationContext>;
  /** The subgraphs' data sources; each event adds its own stand-in for the Primary fetch. */
  services: ServiceMap;
}

/** Ends a subscription's stream: the client gets the error, then `complete`. */
export class SubscriptionEnded extends Error {
  constructor(readonly error: AppError) {
    super(error.message);
  }
}

/**
 * Runs one subscription: for every matching event from the feed, the query
 * plan's Primary fetch is answered from the event's payload and the Rest
 * (other subgraphs' fields) runs through the gateway's own executor, so the
 * subscriber gets exactly what the same selection would give as a query.
 */
export class SubscriptionEngine {
  private readonly internals: GatewayInternals;

  constructor(private readonly options: SubscriptionEngineOptions) {
    this.internals = options.gateway as unknown as GatewayInternals;
  }

  /**
   * Everything about one subscription that no event changes, worked out once:
   * its plan with the Primary fetch sent to the event's stand-in, that
   * fetch's root fields, the operation context and the subgraphs' sources.
   */
  compile(prepared: PreparedOperation): CompiledSubscription {
    const operation = operationFromDocument(this.internals.apiSchema, prepared.document, {
      ...(prepared.operationName ? { operationName: prepared.operationName } : {}),
    });
    const planned = this.internals.queryPlanner.buildQueryPlan(operation);
    if (planned.node?.kind !== 'Subscription') throw new AppError('GRAPHQL_BAD_REQUEST', 'Only subscriptions are served over graphql-ws');
    const primary: FetchNode = { ...planned.node.primary, serviceName: PAYLOAD_SERVICE };
    const { rest } = planned.node;
    const primaryDocument = primary.operationDocumentNode ?? parse(primary.operation);
    const definition = primaryDocument.definitions[0];
    if (definition?.kind !== Kind.OPERATION_DEFINITION) throw new AppError('INTERNAL_ERROR', 'The subscription plan has no primary operation');
    const services: ServiceMap = Object.create(null) as ServiceMap;
    for (const [name, { dataSource }] of Object.entries(this.internals.serviceMap)) services[name] = dataSource;
    return {
      plan: { kind: 'QueryPlan', node: rest ? { kind: 'Sequence', nodes: [primary, rest] } : primary },
      rootFields: definition.selectionSet.selections.filter((selection): selection is FieldNode => selection.kind === Kind.FIELD),
      operationContext: buildOperationContext({
        schema: this.internals.schema,
        operationDocument: prepared.document,
        ...(prepared.operationName ? { operationName: prepared.operationName } : {}),
      }),
      services,
    };
  }

  /**
   * The stream of results. `onOverflow` is called, and the stream ends, when
   * more than maxPendingEvents events wait for this subscriber. Aborting the
   * signal with an AppError as its reason ends the stream with that error
   * (a subscriber who lost access); any other abort ends it quietly.
   */
  async *run(request: SubscriptionRequest, onOverflow: () => void, signal: AbortSignal): AsyncGenerator<ExecutionResult> {
    const compiled = this.compile(request.prepared);
    const queued: EventEnvelope[] = [];
    let wake: (() => void) | undefined;
    let overflowed = false;
    const stopListening = await this.listen(request, (event) => {
      if (overflowed || event.type !== request.source.eventType || !request.source.matches(request.args, event)) return;
      if (queued.length >= this.options.maxPendingEvents) {
        overflowed = true;
        onOverflow();
      } else {
        queued.push(event);
      }
      wake?.();
    });
    // Stop listening the moment the subscription ends, whatever state this generator is in.
    const aborted = () => {
      stopListening();
      wake?.();
    };
    signal.addEventListener('abort', aborted);
    try {
      while (!signal.aborted && !overflowed) {
        const event = queued.shift();
        if (!event) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        const denied = await this.options.authorize(request.principal(), request, event);
        if (denied !== undefined) throw new SubscriptionEnded(denied);
        yield await this.execute(request, compiled, event);
      }
      if (signal.aborted && isAppError(signal.reason)) throw new SubscriptionEnded(signal.reason);
    } finally {
      signal.removeEventListener('abort', aborted);
      stopListening();
    }
  }

  private async listen(request: SubscriptionRequest, listener: (event: EventEnvelope) => void): Promise<() => void> {
    try {
      return await this.options.feeds.listen(request.source.subject, listener);
    } catch (error) {
      this.options.logger.error({ err: error, subject: request.source.subject, correlationId: request.correlationId }, 'subscription source unavailable');
      throw new SubscriptionEnded(new AppError('SUBSCRIPTION_SOURCE_UNAVAILABLE', 'The events behind this subscription cannot be read right now; retry shortly', { cause: error }));
    }
  }

  private async execute(request: SubscriptionRequest, compiled: CompiledSubscription, event: EventEnvelope): Promise<ExecutionResult> {
    const serviceMap: ServiceMap = Object.create(compiled.services) as ServiceMap;
    serviceMap[PAYLOAD_SERVICE] = payloadSource(request.source.typename, compiled.rootFields, event);
    const context: GatewayContext = { principal: request.principal(), correlationId: event.correlationId, internalTokens: new Map() };
    const { prepared } = request;
    const requestContext = gatewayRequestContext({
      prepared,
      query: '',
      variables: request.variables,
      context,
      schema: this.internals.schema,
      logger: this.options.logger,
    });
    const result = await executeQueryPlan(compiled.plan, serviceMap, requestContext, compiled.operationContext, this.internals.supergraphSchema, this.internals.apiSchema);
    const errors = result.errors?.map((error) => this.options.formatError(error.toJSON(), error));
    return errors ? { data: result.data ?? null, errors: errors as unknown as ExecutionResult['errors'] } : { data: result.data ?? null };
  }
}

/**
 * Answers the Primary fetch (`subscription { field(args) { __typename id name } }`)
 * from the event: the root field is the payload, projected on the selection.
 * A field the payload does not carry is null; the event's contract decides
 * what a subscription can select from the owning subgraph directly.
 */
function payloadSource(typename: string, rootFields: readonly FieldNode[], event: EventEnvelope): GraphQLDataSource {
  return {
    process: async () => {
      const data: Record<string, unknown> = {};
      for (const field of rootFields) data[field.alias?.value ?? field.name.value] = project(field.selectionSet, typename, event.payload);
      return { data };
    },
  };
}

function project(selectionSet: SelectionSetNode | undefined, typename: string, value: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const selection of selectionSet?.selections ?? []) {
    if (selection.kind === Kind.FIELD) {
      const name = selection.name.value;
      result[selection.alias?.value ?? name] = name === '__typename' ? typename : (value[name] ?? null);
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      Object.assign(result, project(selection.selectionSet, typename, value));
    }
  }
  return result;
}
