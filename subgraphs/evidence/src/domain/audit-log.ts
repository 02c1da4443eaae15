import { z } from 'zod';
import { parseInput } from '@aifactory/errors';
import { hasPlatformRole, type Principal } from '@aifactory/service-auth';
import type { AuditEvent, AuditLogStore } from '../data/audit-log.js';

const idSchema = z.uuid();
const limitInput = z.object({ limit: z.int().min(1).max(500) });

const auditEventInput = z
  .object({
    occurredAt: z.date(),
    // The event envelope's actor types (packages/contracts), so an event's actor can be recorded as is.
    actorType: z.enum(['user', 'service_account', 'service', 'system']),
    actorId: z.string().min(1),
    action: z.string().regex(/^[a-z0-9_]+(\.[a-z0-9_]+)+$/, 'must be a dotted lowercase name such as organization.created'),
    organizationId: idSchema.nullable().default(null),
    departmentId: idSchema.nullable().default(null),
    projectId: idSchema.nullable().default(null),
    correlationId: z.string().min(1),
    payload: z.record(z.string(), z.json()).default({}),
  })
  // A scope names its whole path from the organization down, so a tenant's feed finds every event below it.
  .refine((event) => event.departmentId === null || event.organizationId !== null, {
    path: ['organizationId'],
    message: 'is required with a departmentId',
  })
  .refine((event) => event.projectId === null || event.departmentId !== null, {
    path: ['departmentId'],
    message: 'is required with a projectId',
  });

export type AuditEventInput = z.input<typeof auditEventInput>;

/** The store's methods alone, so a test can hand the service an in-memory store. */
export type AuditLogStorage = Pick<AuditLogStore, keyof AuditLogStore>;

/**
 * The audit log: what happened, who did it, and where. Until IAM memberships
 * exist (the IAM issue), only platform admins may read it: every read fails
 * closed for everyone else.
 */
export class AuditLogService {
  constructor(private readonly store: AuditLogStorage) {}

  private canReadAuditLog(principal: Principal): boolean {
    return hasPlatformRole(principal, 'platform_admin');
  }

  async auditEvents(principal: Principal, limit: number): Promise<AuditEvent[]> {
    const valid = parseInput(limitInput, { limit });
    return this.canReadAuditLog(principal) ? this.store.listNewestFirst(valid.limit) : [];
  }

  async auditEvent(principal: Principal, id: string): Promise<AuditEvent | null> {
    if (!this.canReadAuditLog(principal) || !idSchema.safeParse(id).success) return null;
    return this.store.findAuditEvent(id);
  }

  /** For the domains that record their actions; never exposed as a mutation, so the log cannot be forged. */
  async recordAuditEvent(input: AuditEventInput): Promise<AuditEvent> {
    return this.store.appendAuditEvent(parseInput(auditEventInput, input));
  }
}
