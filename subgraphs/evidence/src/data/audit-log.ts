import type { EvidencePrisma } from './database.js';
import type { AuditEvent, Prisma } from '../generated/prisma/client.js';

export type { AuditEvent };

export interface NewAuditEvent {
  occurredAt: Date;
  actorType: string;
  actorId: string;
  action: string;
  organizationId: string | null;
  departmentId: string | null;
  projectId: string | null;
  correlationId: string;
  payload: Prisma.InputJsonObject;
}

/** Storage of the audit log; rows are only ever appended. */
export class AuditLogStore {
  constructor(private readonly prisma: EvidencePrisma) {}

  listNewestFirst(limit: number): Promise<AuditEvent[]> {
    return this.prisma.auditEvent.findMany({ orderBy: [{ occurredAt: 'desc' }, { id: 'desc' }], take: limit });
  }

  findAuditEvent(id: string): Promise<AuditEvent | null> {
    return this.prisma.auditEvent.findUnique({ where: { id } });
  }

  appendAuditEvent(event: NewAuditEvent): Promise<AuditEvent> {
    return this.prisma.auditEvent.create({ data: event });
  }
}

/** Where a page of the oldest-first order ends: the next page starts just after it. */
export interface AuditEventCursor {
  occurredAt: Date;
  id: string;
}

/**
 * One page of the audit log, oldest first (`occurredAt`, then `id` to break
 * ties). Keyset paging, not OFFSET: every page costs the same however deep an
 * export has gone, and rows appended meanwhile cannot shift a page.
 */
export function listAuditEventsOldestFirst(prisma: EvidencePrisma, after: AuditEventCursor | undefined, limit: number): Promise<AuditEvent[]> {
  return prisma.auditEvent.findMany({
    where: after
      ? { OR: [{ occurredAt: { gt: after.occurredAt } }, { occurredAt: after.occurredAt, id: { gt: after.id } }] }
      : {},
    orderBy: [{ occurredAt: 'asc' }, { id: 'asc' }],
    take: limit,
  });
}
