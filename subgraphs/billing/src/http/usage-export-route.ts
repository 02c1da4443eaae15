import type { ServerResponse } from 'node:http';
import type { Access } from '@aifactory/authz';
import { AppError } from '@aifactory/errors';
import type { SubgraphHttpContext, SubgraphHttpRoute } from '@aifactory/subgraph-kit';
import type { UsageLineView } from '../data/usage-reads-store.js';
import { formatExact } from '../domain/rating-amounts.js';
import type { UsageReads } from '../domain/usage-reads.js';

/** The export's columns, in order; the header line names them as they are named here. */
export const USAGE_EXPORT_COLUMNS = [
  'lineId',
  'lineKey',
  'kind',
  'occurredAt',
  'ratedAt',
  'period',
  'product',
  'departmentId',
  'projectId',
  'apiKeyId',
  'resourceType',
  'resourceId',
  'unit',
  'unitVersion',
  'quantity',
  'currency',
  'priceBookVersion',
  'unitPrice',
  'amount',
  'usagePostingId',
  'eventId',
  'usageId',
  'windowStart',
  'windowEnd',
] as const;

// RFC 4180 ends records with CRLF.
const RECORD_END = '\r\n';
/** A spreadsheet runs a cell that starts with one of these as a formula (OWASP: CSV injection). */
const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/**
 * One CSV field. Resource ids and line keys come from products, so no value
 * is trusted to be inert: a leading formula character gets an apostrophe
 * (a negative amount or quantity is a number, written as it is), and quotes,
 * commas and line breaks are quoted per RFC 4180.
 */
export function csvField(value: string | null, numeric = false): string {
  if (value === null) return '';
  const inert = !numeric && FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(inert) ? `"${inert.replaceAll('"', '""')}"` : inert;
}

const NUMERIC = new Set<string>(['lineId', 'unitVersion', 'quantity', 'priceBookVersion', 'unitPrice', 'amount']);

export function usageLineCsvRecord(line: UsageLineView): string {
  const values: Record<(typeof USAGE_EXPORT_COLUMNS)[number], string | null> = {
    lineId: line.id.toString(),
    lineKey: line.lineKey,
    kind: line.kind,
    occurredAt: line.occurredAt.toISOString(),
    ratedAt: line.ratedAt.toISOString(),
    period: line.period.slice(0, 7),
    product: line.product,
    departmentId: line.departmentId,
    projectId: line.projectId,
    apiKeyId: line.apiKeyId,
    resourceType: line.resourceType,
    resourceId: line.resourceId,
    unit: line.unitId,
    unitVersion: String(line.unitVersion),
    quantity: line.quantity.toString(),
    currency: line.currency,
    priceBookVersion: String(line.priceBookVersion),
    unitPrice: line.unitPrice,
    amount: formatExact(line.exactUnits),
    usagePostingId: line.posting.id,
    eventId: line.eventId,
    usageId: line.usageId,
    windowStart: line.windowStart?.toISOString() ?? null,
    windowEnd: line.windowEnd?.toISOString() ?? null,
  };
  return USAGE_EXPORT_COLUMNS.map((column) => csvField(values[column], NUMERIC.has(column))).join(',') + RECORD_END;
}

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

/** An instant query parameter, or undefined when it is absent. */
function instantParameter(url: URL, name: string): Date | undefined {
  const text = url.searchParams.get(name);
  if (text === null || text === '') return undefined;
  const at = new Date(text);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(text) || Number.isNaN(at.getTime())) {
    throw new AppError('BAD_REQUEST_INVALID_INPUT', `${name} must be an ISO-8601 instant such as 2026-05-01T00:00:00Z`, { details: { field: name } });
  }
  return at;
}

/**
 * `GET /api/usage.csv?organizationId=&from=&to=` (the gateway's
 * `/api/billing/usage.csv`): an organization's rated usage lines whose usage
 * happened in [from, to) (either end open when left out) as CSV, for whoever
 * reads the organization's billing. Streamed page by page with
 * backpressure, so its size is bounded by the client's patience, not by
 * this process's memory. `accessOf` is the verified caller's authorization.
 */
export function usageExportRoute(reads: UsageReads, accessOf: (ctx: SubgraphHttpContext) => Access): SubgraphHttpRoute {
  return {
    method: 'GET',
    path: '/api/usage.csv',
    access: 'internal',
    handle: async (ctx) => {
      const organizationId = ctx.url.searchParams.get('organizationId');
      if (!organizationId) throw new AppError('BAD_REQUEST_INVALID_INPUT', 'organizationId is required', { details: { field: 'organizationId' } });
      const pages = reads.exportLines(accessOf(ctx), organizationId, { from: instantParameter(ctx.url, 'from'), to: instantParameter(ctx.url, 'to') });
      // The first page (and the access check) comes before the status line, so a refusal or a database that is down gets a proper error answer.
      const first = await pages.next();
      const { res } = ctx;
      res.writeHead(200, {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': `attachment; filename="usage-${organizationId}.csv"`,
        'cache-control': 'no-store',
      });
      const header = USAGE_EXPORT_COLUMNS.join(',') + RECORD_END;
      const firstChunk = header + (first.done ? '' : first.value.map(usageLineCsvRecord).join(''));
      if (!res.write(firstChunk) && !(await clientReady(res))) return;
      if (!first.done) {
        for await (const page of pages) {
          if (!res.write(page.map(usageLineCsvRecord).join('')) && !(await clientReady(res))) return;
        }
      }
      res.end();
    },
  };
}
