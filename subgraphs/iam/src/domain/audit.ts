import type { Actor, AuditRecord } from '@aifactory/contracts';
import { auditOutboxEvent, type AuditedResource, type OutboxEventInput } from '@aifactory/events';

/** Who caused an audited change and under which correlation id: a request's principal, the gateway's sign-in call, or a seed. */
export interface AuditCaller {
  actor: Actor;
  correlationId: string;
}

/** The IAM object an action was on (organization, department, project, membership, user, ...). */
export type AuditResource = AuditedResource;

export interface AuditInput {
  /** An `iam.*` action id from audit-actions.json. */
  action: string;
  outcome: AuditRecord['outcome'];
  caller: AuditCaller;
  /** The scope the caller used, where one was checked (null for sign-in and seeds). */
  scope: string | null;
  /** Null for resources outside any organization (a user, a platform role). */
  resource: AuditResource | null;
  reason?: string | null;
  details?: Record<string, unknown>;
}

/**
 * The `platform.audit.iam.<action>` event for one IAM change, written to the
 * outbox in the change's own transaction (@aifactory/events' auditOutboxEvent).
 */
export function auditEvent(input: AuditInput): OutboxEventInput {
  const { caller, ...rest } = input;
  return auditOutboxEvent('iam', { ...rest, actor: caller.actor, correlationId: caller.correlationId });
}
