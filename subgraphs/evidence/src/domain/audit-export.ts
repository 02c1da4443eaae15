import { AppError } from '@aifactory/errors';
import { hasPlatformRole, type Principal } from '@aifactory/service-auth';
import { CSV_RECORD_END, csvField } from '@aifactory/subgraph-kit';
import type { AuditEvent, AuditEventCursor } from '../data/audit-log.js';

/** The export's columns, in order; the header line names them as they are named here. */
export const AUDIT_EXPORT_COLUMNS = [
  'id',
  'occurredAt',
  'recordedAt',
  'actorType',
  'actorId',
  'action',
  'organizationId',
  'departmentId',
  'projectId',
  'correlationId',
  'payload',
] as const;

/** Rows per database read: memory stays flat however long the log is. */
export const AUDIT_EXPORT_PAGE_SIZE = 500;

export function auditExportHeader(): string {
  return AUDIT_EXPORT_COLUMNS.join(',') + CSV_RECORD_END;
}

/** Audit payloads carry what users typed (names, descriptions): every field goes through csvField's formula guard. */
export function auditEventCsvRecord(event: AuditEvent): string {
  const values: Record<(typeof AUDIT_EXPORT_COLUMNS)[number], string | null> = {
    id: event.id,
    occurredAt: event.occurredAt.toISOString(),
    recordedAt: event.recordedAt.toISOString(),
    actorType: event.actorType,
    actorId: event.actorId,
    action: event.action,
    organizationId: event.organizationId,
    departmentId: event.departmentId,
    projectId: event.projectId,
    correlationId: event.correlationId,
    payload: JSON.stringify(event.payload),
  };
  return AUDIT_EXPORT_COLUMNS.map((column) => csvField(values[column])).join(',') + CSV_RECORD_END;
}

/** Same gate as the GraphQL feed (domain/audit-log.ts) until IAM memberships exist; an export refuses loudly instead of answering empty. */
export function requireAuditExportAccess(principal: Principal): void {
  if (!hasPlatformRole(principal, 'platform_admin')) throw new AppError('AUTH_FORBIDDEN', 'Exporting the audit log requires the platform_admin role');
}

export type AuditEventPageReader = (after: AuditEventCursor | undefined, limit: number) => Promise<AuditEvent[]>;

/**
 * The whole log as CSV text, oldest event first, one chunk per page (the
 * header rides with the first). Pages are read only as the consumer asks for
 * the next chunk, so a slow client slows the reads instead of filling memory.
 */
export async function* auditExportCsv(readPage: AuditEventPageReader, pageSize = AUDIT_EXPORT_PAGE_SIZE): AsyncGenerator<string> {
  let header = auditExportHeader();
  let after: AuditEventCursor | undefined;
  for (;;) {
    const page = await readPage(after, pageSize);
    const text = header + page.map(auditEventCsvRecord).join('');
    header = '';
    if (text !== '') yield text;
    const last = page.at(-1);
    if (page.length < pageSize || last === undefined) return;
    after = { occurredAt: last.occurredAt, id: last.id };
  }
}
