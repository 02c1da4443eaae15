import type { Access } from '@aifactory/authz';
import { AppError } from '@aifactory/errors';
import { CSV_RECORD_END, csvField, streamCsv, type SubgraphHttpContext, type SubgraphHttpRoute } from '@aifactory/subgraph-kit';
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

/** Numbers (a negative amount or quantity included) are written as they are; every other value gets csvField's formula guard, as resource ids and line keys come from products. */
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
  return USAGE_EXPORT_COLUMNS.map((column) => csvField(values[column], NUMERIC.has(column))).join(',') + CSV_RECORD_END;
}

/** The header, riding with the first page's records (alone when there are none), then one chunk per page. */
async function* usageCsv(pages: AsyncGenerator<UsageLineView[]>): AsyncGenerator<string> {
  const first = await pages.next();
  yield USAGE_EXPORT_COLUMNS.join(',') + CSV_RECORD_END + (first.done ? '' : first.value.map(usageLineCsvRecord).join(''));
  if (first.done) return;
  for await (const page of pages) yield page.map(usageLineCsvRecord).join('');
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
      // The access check runs on the first page, which streamCsv reads before the status line.
      await streamCsv(ctx.res, `usage-${organizationId}.csv`, usageCsv(pages));
    },
  };
}
