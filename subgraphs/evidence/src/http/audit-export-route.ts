import type { ServerResponse } from 'node:http';
import { AppError } from '@aifactory/errors';
import type { SubgraphHttpRoute } from '@aifactory/subgraph-kit';
import { auditExportCsv, requireAuditExportAccess, type AuditEventPageReader } from '../domain/audit-export.js';

/**
 * True once the client has taken what was written (`drain`), false once it
 * went away: a `drain` that never comes must not hold the export, and its
 * database reads, open forever.
 */
function clientReady(res: ServerResponse): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onDrain = () => {
      res.off('close', onClose);
      resolve(true);
    };
    const onClose = () => {
      res.off('drain', onDrain);
      resolve(false);
    };
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

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
      const { res } = ctx;
      const chunks = auditExportCsv(readPage);
      // The first page is read before the status line, so a database that is down still gets a proper error answer.
      const first = await chunks.next();
      res.writeHead(200, {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': 'attachment; filename="audit-events.csv"',
        'cache-control': 'no-store',
      });
      if (!first.done && !res.write(first.value) && !(await clientReady(res))) return;
      for await (const chunk of chunks) {
        if (!res.write(chunk) && !(await clientReady(res))) return;
      }
      res.end();
    },
  };
}
