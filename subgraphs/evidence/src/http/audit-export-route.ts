import { AppError } from '@aifactory/errors';
import { streamCsv, type SubgraphHttpRoute } from '@aifactory/subgraph-kit';
import { auditExportCsv, requireAuditExportAccess, type AuditEventPageReader } from '../domain/audit-export.js';

/**
 * `GET /api/audit-events.csv` (the gateway's `/api/evidence/audit-events.csv`):
 * the whole audit log as CSV for platform admins, streamed page by page with
 * backpressure, so its size is bounded by the client's patience, not by this
 * process's memory.
 */
export function auditExportRoute(readPage: AuditEventPageReader): SubgraphHttpRoute {
  return {
    method: 'GET',
    path: '/api/audit-events.csv',
    access: 'internal',
    handle: async (ctx) => {
      if (!ctx.call) throw new AppError('INTERNAL_AUTH_UNAUTHENTICATED', 'A valid internal service token is required');
      requireAuditExportAccess(ctx.call.principal);
      await streamCsv(ctx.res, 'audit-events.csv', auditExportCsv(readPage));
    },
  };
}
