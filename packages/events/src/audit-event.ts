import { randomUUID } from 'node:crypto';
import {
  auditEventType,
  formatResourceId,
  GLOBAL_REGION,
  loadRegistryData,
  type Actor,
  type AuditActionRow,
  type AuditRecord,
  type EventPublisher,
} from '@aifactory/contracts';
import type { OutboxEventInput } from './outbox-writer.js';

/** The object an audited action was on; ids become the canonical resource id (seed 004) in region `global`. */
export interface AuditedResource {
  organizationId: string;
  departmentId?: string | null;
  projectId?: string | null;
  /** A registered resource type (resource-types.json). */
  type: string;
  id: string;
}

export interface AuditEventInput {
  /** A `<publisher>.*` action id from audit-actions.json. */
  action: string;
  outcome: AuditRecord['outcome'];
  actor: Actor;
  /** When the actor is a service acting for someone (issue 15): that party, and the chain of services. */
  onBehalfOf?: { type: 'user' | 'service_account' | 'service'; id: string };
  actorChain?: string[];
  correlationId: string;
  /** The scope checked or used, where there is one. */
  scope: string | null;
  /** Null for an object outside any organization (a user, a platform role, a price book). */
  resource: AuditedResource | null;
  reason?: string | null;
  details?: Record<string, unknown>;
}

const ACTIONS: ReadonlyMap<string, AuditActionRow> = new Map(loadRegistryData().auditActions.map((action) => [action.id, action]));

/**
 * The `platform.audit.<action>` event of one audited change, for the outbox
 * of the change's own transaction (ARCHITECTURE.md, Outbox and events). The
 * action's version, retention class and privileged flag come from the
 * registry file, so an unregistered action, or one of another publisher,
 * fails here, in tests, rather than at the relay.
 */
export function auditOutboxEvent(publisher: EventPublisher, input: AuditEventInput): OutboxEventInput {
  const action = ACTIONS.get(input.action);
  if (action === undefined || !action.id.startsWith(`${publisher}.`)) {
    throw new RangeError(`audit action ${input.action} is not registered for ${publisher} in audit-actions.json`);
  }
  const id = randomUUID();
  const { resource } = input;
  const record: AuditRecord = {
    action: action.id,
    actionVersion: action.version,
    outcome: input.outcome,
    privileged: action.privileged,
    retentionClass: action.retentionClass,
    principal: input.actor,
    ...(input.onBehalfOf === undefined ? {} : { onBehalfOf: input.onBehalfOf, ...(input.actorChain === undefined ? {} : { actorChain: input.actorChain }) }),
    scope: input.scope,
    resource: resource === null ? null : canonicalResourceId(resource),
    correlationId: input.correlationId,
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
    actor: input.actor,
    organizationId: resource?.organizationId ?? null,
    departmentId: resource?.departmentId ?? null,
    projectId: resource?.projectId ?? null,
    correlationId: input.correlationId,
  };
}

function canonicalResourceId(resource: AuditedResource): string {
  return formatResourceId({
    region: GLOBAL_REGION,
    tenantId: resource.organizationId,
    projectId: resource.projectId ?? null,
    resourceType: resource.type,
    resourceId: resource.id,
  });
}
