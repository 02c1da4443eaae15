import { auditOutboxEvent, writeOutboxEvent, type AuditedResource, type OutboxEventInput, type Queryable } from '@aifactory/events';
import type { Principal } from '@aifactory/service-auth';
import { actorOf } from '@aifactory/subgraph-kit';

/** Who made an audited change, and under which correlation id. */
export interface AuditCaller {
  principal: Principal;
  correlationId: string;
}

/** An organization's billing object the action was on (account, posting, price_book). */
export type AuditResource = AuditedResource;

export interface AuditInput {
  /** A `billing.*` action id from audit-actions.json. */
  action: string;
  caller: AuditCaller;
  /** The scope the change was allowed under. */
  scope: string;
  /** Null for a platform-wide object (a price book belongs to no organization). */
  resource: AuditResource | null;
  reason?: string | null;
  details?: Record<string, unknown>;
}

/**
 * The `platform.audit.billing.<action>` event of one succeeded billing
 * change (denies are the subgraph kit's). A service acting for someone is
 * recorded with that party, as every audit record of a service call is
 * (issue 15).
 */
export function auditEvent(input: AuditInput): OutboxEventInput {
  const { caller, ...rest } = input;
  const { onBehalfOf, actorChain } = caller.principal;
  return auditOutboxEvent('billing', {
    ...rest,
    outcome: 'succeeded',
    actor: actorOf(caller.principal),
    ...(onBehalfOf === undefined ? {} : { onBehalfOf: { type: onBehalfOf.type, id: onBehalfOf.subject }, ...(actorChain === undefined ? {} : { actorChain }) }),
    correlationId: caller.correlationId,
  });
}

/** Writes the audit event into billing's outbox inside the change's transaction: published if and only if the change commits. */
export async function recordAudit(tx: Queryable, input: AuditInput, options: { subjectPrefix: string }): Promise<void> {
  await writeOutboxEvent(tx, auditEvent(input), { subjectPrefix: options.subjectPrefix });
}
