import type pg from 'pg';
import {
  DEPARTMENT_EVENTS,
  findEventDefinition,
  organizationCreatedV1,
  organizationUpdatedV1,
  parseEvent,
  prefixSubject,
  PROJECT_EVENTS,
  streamDeclarations,
  SUBJECT_FAMILIES,
  type DepartmentState,
  type OrganizationState,
  type ProjectState,
} from '@aifactory/contracts';
import {
  ensureConsumer,
  runConsumer,
  type ConsumedEvent,
  type ConsumerDeclaration,
  type DecodeEvent,
  type HandleEvents,
  type KindOf,
  type RunningConsumer,
} from '@aifactory/event-consumers';
import { ensureStreams } from '@aifactory/events';
import type { Logger } from '@aifactory/logging';
import type { ServiceMetrics } from '@aifactory/telemetry';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { openOrganizationAccountsIn } from '../data/accounts.js';
import { HierarchyStore } from '../data/hierarchy.js';

export const HIERARCHY_CONSUMER = 'billing-hierarchy';

export interface HierarchyProjectionOptions {
  nc: NatsConnection;
  subjectPrefix: string;
  /** billing's app pool: the read model and the consumer tables live in billing's schema. */
  pool: pg.Pool;
  schema: string;
  logger: Logger;
  metrics: ServiceMetrics;
}

const ORGANIZATION_TYPES: ReadonlySet<string> = new Set([organizationCreatedV1.type, organizationUpdatedV1.type]);
const DEPARTMENT_TYPES: ReadonlySet<string> = new Set(Object.values(DEPARTMENT_EVENTS).map((event) => event.type));
const PROJECT_TYPES: ReadonlySet<string> = new Set(Object.values(PROJECT_EVENTS).map((event) => event.type));

/** Everything iam publishes is a contract event; anything else is dead-lettered rather than guessed at. */
const decode: DecodeEvent<unknown> = (envelope) => {
  const parsed = parseEvent(envelope);
  return parsed.ok ? { ok: true, payload: parsed.payload } : { ok: false, reason: parsed.reason, detail: parsed.issues.join('; ') };
};

const kindOf: KindOf = (envelope) => findEventDefinition(envelope.type, envelope.version)?.kind;

/**
 * Applies one batch of iam's events to billing's read model. Only
 * organization, department and project events change it; the rest of iam's
 * family (users, memberships, keys, policy) passes through, recorded as
 * processed so a redelivery is a no-op.
 */
function hierarchyHandler(store: HierarchyStore): HandleEvents<unknown> {
  return async (tx, events) => {
    for (const event of events) await applyEvent(store, tx, event);
  };
}

async function applyEvent(store: HierarchyStore, tx: pg.PoolClient, event: ConsumedEvent<unknown>): Promise<void> {
  const { type, aggregateVersion } = event.envelope;
  if (ORGANIZATION_TYPES.has(type)) {
    const state = event.payload as OrganizationState;
    await store.applyOrganization(tx, state, aggregateVersion);
    // Every organization event, not only `created`: a read model rebuilt from a stream that lost
    // the first event still opens the accounts. Opening is idempotent, in the created currency.
    await openOrganizationAccountsIn(tx, state.id, state.billingCurrency);
  } else if (DEPARTMENT_TYPES.has(type)) {
    await store.applyDepartment(tx, event.payload as DepartmentState, aggregateVersion);
  } else if (PROJECT_TYPES.has(type)) {
    await store.applyProject(tx, event.payload as ProjectState, aggregateVersion);
  }
}

/**
 * billing's durable consumer of iam's events (`billing-hierarchy`): keeps
 * billing's own copy of organizations, departments and projects, so billing
 * never reads iam's tables, and opens an organization's accounts in the
 * currency its `organization.created` event carries, in the same
 * transaction that records the event as processed.
 */
export async function startHierarchyProjection(options: HierarchyProjectionOptions): Promise<RunningConsumer> {
  const { nc, subjectPrefix } = options;
  // One filter over the whole family: nats-server 2.9 knows one filter subject per consumer.
  const subject = prefixSubject(`${SUBJECT_FAMILIES.platformIam}.>`, subjectPrefix);
  const stream = streamDeclarations({ subjectPrefix }).find((declaration) => declaration.subjects.includes(subject));
  if (stream === undefined) throw new RangeError(`no stream declared for ${subject}`);
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm, [stream]);
  const declaration: ConsumerDeclaration = {
    durableName: HIERARCHY_CONSUMER,
    filterSubjects: [subject],
    ackWaitMs: 30_000,
    maxDeliver: 10,
    backoffMs: [100, 1_000, 5_000, 30_000],
  };
  await ensureConsumer(jsm, stream.name, declaration);
  return runConsumer({
    js: jetstream(nc),
    pool: options.pool,
    schema: options.schema,
    stream: stream.name,
    consumer: declaration,
    decode,
    kindOf,
    handle: hierarchyHandler(new HierarchyStore()),
    batchSize: 20,
    logger: options.logger,
    metrics: options.metrics,
  });
}
