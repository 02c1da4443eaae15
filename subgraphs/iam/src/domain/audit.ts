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
import type { OutboxEventInput } from '@aifactory/events';

/** Who caused an audited change and under which correlation id: a request's principal, the gateway's sign-in call, or a seed. */
export interface AuditCaller {
  actor: Actor;
  correlationId: string;
}

/** The IAM object an action was on; ids become the canonical resource id (seed 004) in region `global`. */
export interface AuditResource {
  organizationId: string;
  departmentId?: string | null;
  projectId?: string | null;
  /** A registered resource type (resource-types.json): organization, department, project, membership, user, ... */
  type: string;
  id: string;
}

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

const IAM_ACTIONS: ReadonlyMap<string, AuditActionRow> = new Map(
  loadRegistryData()
    .auditActions.filter((action) => action.id.startsWith('iam.'))
    .map((action) => [action.id, action]),
);

/**
 * The `platform.audit.iam.<action>` event for one IAM change, written to the
 * outbox in the change's own transaction (ARCHITECTURE.md, Outbox and
 * events). The action's version, retention class and privileged flag come
 * from the registry file, so an unregistered action fails here, in tests,
 * rather than at the relay.
 */
export function auditEvent(input: AuditInput): OutboxEventInput {
  const action = IAM_ACTIONS.get(input.action);
  if (action === undefined) throw new RangeError(`audit action ${input.action} is not registered in audit-actions.json`);
  const id = randomUUID();
  const { resource } = input;
  const record: AuditRecord = {
    action: action.id,
    actionVersion: action.version,
    outcome: input.outcome,
    privileged: action.privileged,
    retentionClass: action.retentionClass,
    principal: input.caller.actor,
    scope: input.scope,
    resource: resource === null ? null : canonicalResourceId(resource),
    correlationId: input.caller.correlationId,
    reason: input.reason ?? null,
    details: input.details ?? {},
  };
  return {
    id,
    type: auditEventType(action.id),
    version: 1,
    payload: record,
    // An audit record is its own aggregate (plan-iam.md, Audit events).
    aggregateId: id,
    aggregateVersion: 1,
    actor: input.caller.actor,
    organizationId: resource?.organizationId ?? null,
    departmentId: resource?.departmentId ?? null,
    projectId: resource?.projectId ?? null,
    correlationId: input.caller.correlationId,
  };
}

export function canonicalResourceId(resource: AuditResource): string {
  return formatResourceId({
    region: GLOBAL_REGION,
    tenantId: resource.organizationId,
    projectId: resource.projectId ?? null,
    resourceType: resource.type,
    resourceId: resource.id,
  });
}
