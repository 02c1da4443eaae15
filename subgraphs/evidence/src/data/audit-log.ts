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
