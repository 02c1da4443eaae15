import {
  auditEventType,
  eventEnvelopeSchema,
  nameBasedUuid,
  parseEvent,
  type Actor,
  type AuditRecord,
  type EventEnvelope,
  type EventPublisher,
} from '@aifactory/contracts';
import { AppError } from '@aifactory/errors';

/**
 * Fixed for all time: every instance of every service must derive the same id
 * for the same deny, or the outbox key and JetStream's msg id cannot dedupe it.
 */
const DENY_ID_NAMESPACE = Buffer.from('411d2838b904468fb262715d8202d592', 'hex');

/**
 * The id of the audit event for one coalesced deny: a UUIDv5 (RFC 4122, SHA-1
 * of a namespace and the name) over principal, scope, resource and UTC
 * minute, so a second writer (another instance, a retry) produces the same
 * id and is deduped downstream instead of adding a row.
 */
export function denyEventId(principalId: string, scope: string, resourceKey: string, minuteIso: string): string {
  // JSON keeps field boundaries whatever the fields contain.
  return nameBasedUuid(DENY_ID_NAMESPACE, JSON.stringify([principalId, scope, resourceKey, minuteIso]));
}

/** The start of the UTC minute holding `ms`, as ISO-8601: the coalescing window. */
export function utcMinute(ms: number): string {
  return new Date(Math.floor(ms / 60_000) * 60_000).toISOString();
}

/** The audit action every publisher registers for its denies (audit-actions.json). */
export function denyActionId(publisher: EventPublisher): string {
  return `${publisher}.access.deny`;
}

/**
 * One coalesced deny as a sink writes it: the audit record plus what the
 * event envelope needs besides it. The first deny of the minute supplies the
 * correlation id and time; repeats within the minute are not written.
 */
export interface DeniedAccess {
  id: string;
  occurredAt: Date;
  publisher: EventPublisher;
  actor: Actor;
  organizationId: string | null;
  departmentId: string | null;
  projectId: string | null;
  correlationId: string;
  registryVersions: Record<string, number>;
  record: AuditRecord;
}

/**
 * The envelope the outbox relay would publish for this deny, checked against
 * the audit contract so the JetStream path refuses exactly what the outbox
 * writer refuses.
 */
export function deniedAccessEnvelope(denied: DeniedAccess): EventEnvelope {
  const type = auditEventType(denyActionId(denied.publisher));
  const parsed = parseEvent({ type, version: 1, payload: denied.record });
  if (!parsed.ok) {
    throw new AppError('BAD_REQUEST_INVALID_INPUT', `Audit event ${type} v1 refused: ${parsed.reason}`, { details: { issues: parsed.issues } });
  }
  const envelope = eventEnvelopeSchema.safeParse({
    id: denied.id,
    type,
    version: 1,
    occurredAt: denied.occurredAt.toISOString(),
    correlationId: denied.correlationId,
    traceparent: null,
    actor: denied.actor,
    organizationId: denied.organizationId,
    departmentId: denied.departmentId,
    projectId: denied.projectId,
    registryVersions: denied.registryVersions,
    aggregateType: parsed.definition.aggregateType,
    aggregateId: denied.id,
    aggregateVersion: 1,
    payload: parsed.payload,
  });
  if (!envelope.success) {
    throw new AppError('BAD_REQUEST_INVALID_INPUT', `Audit event ${type} v1 has an invalid envelope`, {
      details: { issues: envelope.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`) },
    });
  }
  return envelope.data;
}
