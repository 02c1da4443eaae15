import { z } from 'zod';
import { loadRegistryData } from '../registry-data.js';
import { SUBJECT_FAMILIES } from '../subjects.js';
import { defineEvent, type EventDefinition } from './definition.js';

/**
 * An audit record (ARCHITECTURE.md, Decisions: Outbox and events): one event
 * per registered audit action, published under `platform.audit.<action id>`,
 * whose first token after `platform.audit` is its publisher, so NATS
 * permissions keep every service to its own actions. The record names who
 * did what to which resource and under which correlation id; the envelope
 * carries the organization, department and project.
 */
export const auditRecordSchema = z.object({
  action: z.string().min(1),
  actionVersion: z.number().int().positive(),
  outcome: z.enum(['succeeded', 'denied']),
  privileged: z.boolean(),
  retentionClass: z.enum(['standard', 'extended', 'legal_hold']),
  principal: z.object({ type: z.enum(['user', 'service_account', 'service', 'system']), id: z.string().min(1) }),
  /**
   * Only when `principal` is a platform service acting for someone (issue 15,
   * Service identity; RFC 8693): the party it acted for. Absent otherwise,
   * so records written before it existed stay valid.
   */
  onBehalfOf: z.object({ type: z.enum(['user', 'service_account', 'service']), id: z.string().min(1) }).optional(),
  /** With `onBehalfOf`: the services that acted, the calling one first, then each earlier one (the token's `act` chain). */
  actorChain: z.array(z.string().min(1)).max(10).optional(),
  /** The scope checked or used, where there is one. */
  scope: z.string().nullable(),
  /** The canonical resource id (resource-id.ts), where the action is on one resource. */
  resource: z.string().nullable(),
  correlationId: z.string().min(1),
  /** Why a request was denied, or what changed; safe text, never a secret. */
  reason: z.string().max(500).nullable(),
  details: z.record(z.string(), z.unknown()),
});
export type AuditRecord = z.infer<typeof auditRecordSchema>;

export function auditEventType(actionId: string): string {
  return `${SUBJECT_FAMILIES.platformAudit}.${actionId}`;
}

/** One contract per registered audit action; its aggregate is the record itself (version 1, id = event id). */
export const AUDIT_EVENTS: readonly EventDefinition[] = loadRegistryData().auditActions.map((action) =>
  defineEvent({
    type: auditEventType(action.id),
    version: 1,
    subject: auditEventType(action.id),
    kind: 'state',
    aggregateType: 'audit',
    description: action.description,
    payload: auditRecordSchema,
  }),
);
