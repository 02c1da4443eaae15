import type { Principal } from '@aifactory/service-auth';
import type { AuditEvent, NewAuditEvent } from '../data/audit-log.js';
import { AuditLogService, type AuditLogStorage } from './audit-log.js';

const admin: Principal = { type: 'user', subject: 'u1', platformRoles: ['platform_admin'], grants: [] };
const developer: Principal = { type: 'user', subject: 'u2', platformRoles: ['internal_developer'], grants: [] };

class InMemoryAuditLog implements AuditLogStorage {
  readonly events: AuditEvent[] = [];

  async listNewestFirst(limit: number): Promise<AuditEvent[]> {
    return [...this.events].sort((a, b) => b.occurredAt.getTime() - a.occurredAt.getTime()).slice(0, limit);
  }

  async findAuditEvent(id: string): Promise<AuditEvent | null> {
    return this.events.find((event) => event.id === id) ?? null;
  }

  async appendAuditEvent(event: NewAuditEvent): Promise<AuditEvent> {
    const row = { ...event, id: crypto.randomUUID(), recordedAt: new Date() } as AuditEvent;
    this.events.push(row);
    return row;
  }
}

const event = {
  occurredAt: new Date('2025-01-01T00:00:00Z'),
  actorType: 'user',
  actorId: 'u1',
  action: 'organization.created',
  correlationId: 'c1',
} as const;

describe('AuditLogService', () => {
  let store: InMemoryAuditLog;
  let auditLog: AuditLogService;

  beforeEach(() => {
    store = new InMemoryAuditLog();
    auditLog = new AuditLogService(store);
  });

  it('refuses a limit above 500', async () => {
    await expect(auditLog.auditEvents(admin, 501)).rejects.toMatchObject({ code: 'BAD_REQUEST_INVALID_INPUT' });
  });

  it('returns nothing to a principal without platform_admin', async () => {
    const recorded = await auditLog.recordAuditEvent(event);

    expect(await auditLog.auditEvents(developer, 50)).toEqual([]);
    expect(await auditLog.auditEvent(developer, recorded.id)).toBeNull();
    expect(await auditLog.auditEvents(admin, 50)).toEqual([recorded]);
  });

  it('treats an id that is not a UUID as not found', async () => {
    expect(await auditLog.auditEvent(admin, 'not-a-uuid')).toBeNull();
  });

  it('refuses a project scope without its department', async () => {
    const projectId = crypto.randomUUID();

    await expect(auditLog.recordAuditEvent({ ...event, projectId })).rejects.toMatchObject({
      code: 'BAD_REQUEST_INVALID_INPUT',
      message: 'departmentId is required with a projectId',
    });
    expect(store.events).toEqual([]);
  });
});
