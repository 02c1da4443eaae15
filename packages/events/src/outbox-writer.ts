import { randomUUID } from 'node:crypto';
import {
  eventEnvelopeSchema,
  parseEvent,
  prefixSubject,
  type Actor,
  type EventEnvelope,
} from '@aifactory/contracts';
import { AppError } from '@aifactory/errors';
import { currentCorrelationId } from '@aifactory/logging';
import { injectTraceContext } from '@aifactory/telemetry';
import { outboxChannel, outboxTable, type Queryable } from './outbox-table.js';

/** What domain code states about an event; the writer fills in the rest of the envelope. */
export interface OutboxEventInput {
  type: string;
  version: number;
  payload: unknown;
  /** Which aggregate's story this is; the type comes from the event's contract. */
  aggregateId: string;
  /** The aggregate's version after this change: 1 for its first event, then +1 per event. */
  aggregateVersion: number;
  actor: Actor;
  organizationId?: string | null;
  departmentId?: string | null;
  projectId?: string | null;
  /** Registry versions in force, where the event affects billing, authorization or audit. */
  registryVersions?: Record<string, number>;
  /** Defaults: a new UUID, now, the request's correlation id, the active trace context. */
  id?: string;
  occurredAt?: Date;
  correlationId?: string;
  traceparent?: string | null;
}

export interface OutboxWriteOptions {
  /** The subgraph's schema; by default the connection's own (an app role's search_path is its schema). */
  schema?: string;
  /** Tests: publish under `<prefix>.<subject>`, matching streams declared with the same prefix. */
  subjectPrefix?: string;
  /**
   * 'ignore': an event whose id (or aggregate version) is already stored is
   * skipped without error, for writers that race on a deterministic id, such
   * as several instances recording the same coalesced audit deny. Default
   * 'error': a duplicate is a defect and fails the transaction.
   */
  onConflict?: 'error' | 'ignore';
}

/**
 * Writes one event into the outbox inside the caller's transaction, so it is
 * published if and only if the change it announces commits (STYLE.md rule 4).
 * The payload is checked against its contract first: an unregistered type or
 * version, or a payload that breaks the contract, is refused. The NOTIFY is
 * delivered at commit and wakes the schema's relay at once.
 */
export async function writeOutboxEvent(
  tx: Queryable,
  input: OutboxEventInput,
  options: OutboxWriteOptions = {},
): Promise<EventEnvelope> {
  const parsed = parseEvent({ type: input.type, version: input.version, payload: input.payload as Record<string, unknown> });
  if (!parsed.ok) {
    throw new AppError('BAD_REQUEST_INVALID_INPUT', refusal(parsed.reason, input), {
      details: { type: input.type, version: input.version, reason: parsed.reason, issues: parsed.issues },
    });
  }
  const definition = parsed.definition;
  const envelope = eventEnvelopeSchema.safeParse({
    id: input.id ?? randomUUID(),
    type: definition.type,
    version: definition.version,
    occurredAt: (input.occurredAt ?? new Date()).toISOString(),
    correlationId: input.correlationId ?? currentCorrelationId(),
    traceparent: input.traceparent === undefined ? activeTraceparent() : input.traceparent,
    actor: input.actor,
    organizationId: input.organizationId ?? null,
    departmentId: input.departmentId ?? null,
    projectId: input.projectId ?? null,
    registryVersions: input.registryVersions ?? {},
    aggregateType: definition.aggregateType,
    aggregateId: input.aggregateId,
    aggregateVersion: input.aggregateVersion,
    payload: parsed.payload,
  });
  if (!envelope.success) {
    throw new AppError('BAD_REQUEST_INVALID_INPUT', `Event ${input.type} v${input.version} has an invalid envelope`, {
      details: { issues: envelope.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`) },
    });
  }
  const event = envelope.data;
  const table = options.schema ? outboxTable(options.schema) : 'outbox_events';
  const channel = options.schema ? `'${outboxChannel(options.schema)}'` : `'outbox_' || current_schema()`;
  await tx.query(
    `WITH inserted AS (
       INSERT INTO ${table} (id, type, version, subject, occurred_at, correlation_id, traceparent, actor,
         organization_id, department_id, project_id, registry_versions, aggregate_type, aggregate_id,
         aggregate_version, payload)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
       ${options.onConflict === 'ignore' ? 'ON CONFLICT DO NOTHING' : ''}
       RETURNING id
     )
     SELECT pg_notify(${channel}, '') FROM inserted`,
    [
      event.id,
      event.type,
      event.version,
      prefixSubject(definition.subject, options.subjectPrefix),
      event.occurredAt,
      event.correlationId,
      event.traceparent,
      JSON.stringify(event.actor),
      event.organizationId,
      event.departmentId,
      event.projectId,
      JSON.stringify(event.registryVersions),
      event.aggregateType,
      event.aggregateId,
      event.aggregateVersion,
      JSON.stringify(event.payload),
    ],
  );
  return event;
}

function refusal(reason: 'unknown_type' | 'unknown_version' | 'invalid_payload', input: OutboxEventInput): string {
  switch (reason) {
    case 'unknown_type':
      return `Event type ${input.type} is not registered in @aifactory/contracts`;
    case 'unknown_version':
      return `Event ${input.type} has no registered version ${input.version}`;
    case 'invalid_payload':
      return `Event ${input.type} v${input.version} has a payload that breaks its contract`;
    default: {
      const unknown: never = reason;
      return `Event refused: ${String(unknown)}`;
    }
  }
}

function activeTraceparent(): string | null {
  const carrier: Record<string, string> = {};
  injectTraceContext(carrier);
  return carrier.traceparent ?? null;
}

