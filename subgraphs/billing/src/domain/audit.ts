import { randomUUID } from 'node:crypto';
import {
  auditEventType,
  formatResourceId,
  GLOBAL_REGION,
  loadRegistryData,
  type Actor,
  type AuditActionRow,
  type AuditRecord,
} from '@aifactory/contracts';
import { writeOutboxEvent, type OutboxEventInput, type Queryable } from '@aifactory/events';
import type { Principal } from '@aifactory/service-auth';
import { actorOf } from '@aifactory/subgraph-kit';

/** Who made an audited change, and under which correlation id. */
export interface AuditCaller {
  principal: Principal;
  correlationId: string;
}

/** An organization's billing object the action was on; it becomes the canonical resource id (seed 004) in region `global`. */
export interface AuditResource {
  organizationId: string;
  projectId?: string | null;
  /** A registered resource type (resource-types.json): ledger_account, posting, price_book. */
  type: string;
  id: string;
}

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

const BILLING_ACTIONS: ReadonlyMap<string, AuditActionRow> = new Map(
  loadRegistryData()
    .auditActions.filter((action) => action.id.startsWith('billing.'))
    .map((action) => [action.id, action]),
);

/**
 * The `platform.audit.billing.<action>` event of one succeeded billing
 * change (denies are the subgraph kit's). The action's version, retention
 * and privileged flag come from the registry file, so an unregistered action
 * fails here, in tests. A service acting for someone is recorded with that
 * party, as every audit record of a service call is (issue 15).
 */
export function auditEvent(input: AuditInput): OutboxEventInput {
  const action = BILLING_ACTIONS.get(input.action);
  if (action === undefined) throw new RangeError(`audit action ${input.action} is not registered in audit-actions.json`);
  const id = randomUUID();
  const { resource, caller } = input;
  const actor: Actor = actorOf(caller.principal);
  const record: AuditRecord = {
    action: action.id,
    actionVersion: action.version,
    outcome: 'succeeded',
    privileged: action.privileged,
    retentionClass: action.retentionClass,
    principal: actor,
    ...(caller.principal.onBehalfOf === undefined
      ? {}
      : {
          onBehalfOf: { type: caller.principal.onBehalfOf.type, id: caller.principal.onBehalfOf.subject },
          ...(caller.principal.actorChain === undefined ? {} : { actorChain: caller.principal.actorChain }),
        }),
    scope: input.scope,
    resource:
      resource === null
        ? null
        : formatResourceId({
            region: GLOBAL_REGION,
            tenantId: resource.organizationId,
            projectId: resource.projectId ?? null,
            resourceType: resource.type,
            resourceId: resource.id,
          }),
    correlationId: caller.correlationId,
    reason: input.reason ?? null,
    details: input.details ?? {},
  };
  return {
    id,
    type: auditEventType(action.id),
    version: 1,
    payload: record,
    // An audit record is its own aggregate.
    aggregateId: id,
    aggregateVersion: 1,
    actor,
    organizationId: resource?.organizationId ?? null,
    projectId: resource?.projectId ?? null,
    correlationId: caller.correlationId,
  };
}

/** Writes the audit event into billing's outbox inside the change's transaction: published if and only if the change commits. */
export async function recordAudit(tx: Queryable, input: AuditInput, options: { subjectPrefix: string }): Promise<void> {
  await writeOutboxEvent(tx, auditEvent(input), { subjectPrefix: options.subjectPrefix });
}
