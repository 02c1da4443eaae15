import type pg from 'pg';
import { z } from 'zod';
import type { Access, AuthzResource } from '@aifactory/authz';
import { AppError, parseInput } from '@aifactory/errors';
import type { HierarchyStore } from '../data/hierarchy.js';
import type { HistoryQuery, LedgerHistoryStore, PostingView, TransferView } from '../data/ledger-history.js';
import type { ReservationRecord } from '../data/reservation-store.js';
import { BILLING_READ } from './balances.js';
import { bigintOf } from './money.js';
import { connectionOf, emptyConnection, pageRequest, type Connection, type PageRequest } from './pagination.js';

const uuid = z.uuid();
const code = z.string().regex(/^[a-z][a-z_]{0,62}$/, 'is lowercase letters and _');
const range = {
  projectId: uuid.nullish(),
  from: z.date().nullish(),
  to: z.date().nullish(),
};
const transferFilter = z.object({ ...range, code: code.nullish(), postingId: z.string().min(1).max(200).nullish() });
const postingFilter = z.object({ ...range, kind: code.nullish(), flagged: z.boolean().nullish() });
const reservationFilter = z.object({ ...range, status: z.enum(['pending', 'posted', 'voided', 'expired']).nullish() });

export type TransferFilter = z.input<typeof transferFilter>;
export type PostingFilter = z.input<typeof postingFilter>;
export type ReservationFilter = z.input<typeof reservationFilter>;
type PageArgs = { first?: number | null; after?: string | null };

/**
 * An organization's ledger history: its transfers, postings and
 * reservations, each a keyset list on `seq` with filters. Read with
 * `platform:billing:read` on the organization; a list narrowed to one of
 * its projects is also open to whoever reads that project's billing.
 */
export class LedgerHistory {
  constructor(
    private readonly store: LedgerHistoryStore,
    private readonly hierarchy: HierarchyStore,
    private readonly pool: pg.Pool,
  ) {}

  async transfers(access: Access, organizationId: string, filter: TransferFilter | null | undefined, args: PageArgs): Promise<Connection<TransferView>> {
    const valid = parseInput(transferFilter, filter ?? {});
    const checked = await this.query(access, organizationId, valid, args);
    if (!checked) return emptyConnection();
    const rows = await this.store.transfers({ ...checked.query, code: valid.code, postingId: valid.postingId });
    return connectionOf('seq', rows, checked.page, (row) => row.seq.toString());
  }

  async postings(access: Access, organizationId: string, filter: PostingFilter | null | undefined, args: PageArgs): Promise<Connection<PostingView>> {
    const valid = parseInput(postingFilter, filter ?? {});
    const checked = await this.query(access, organizationId, valid, args);
    if (!checked) return emptyConnection();
    const rows = await this.store.postings({ ...checked.query, kind: valid.kind, flagged: valid.flagged });
    return connectionOf('seq', rows, checked.page, (row) => row.seq.toString());
  }

  async reservations(
    access: Access,
    organizationId: string,
    filter: ReservationFilter | null | undefined,
    args: PageArgs,
  ): Promise<Connection<ReservationRecord>> {
    const valid = parseInput(reservationFilter, filter ?? {});
    const checked = await this.query(access, organizationId, valid, args);
    if (!checked) return emptyConnection();
    const rows = await this.store.reservations({ ...checked.query, status: valid.status });
    return connectionOf('seq', rows, checked.page, (row) => row.seq.toString());
  }

  /** The checked query every list shares; null for an id that cannot be an organization's. */
  private async query(
    access: Access,
    organizationId: string,
    filter: { projectId?: string | null | undefined; from?: Date | null | undefined; to?: Date | null | undefined },
    args: PageArgs,
  ): Promise<{ query: HistoryQuery; page: PageRequest } | null> {
    const page = pageRequest('seq', args);
    if (filter.from && filter.to && filter.from >= filter.to) {
      throw new AppError('BAD_REQUEST_INVALID_INPUT', 'filter.from must be before filter.to', { details: { field: 'filter.from' } });
    }
    if (!uuid.safeParse(organizationId).success) return null;
    access.require(BILLING_READ, await this.resourceOf(organizationId, filter.projectId ?? null));
    const query: HistoryQuery = {
      organizationId,
      projectId: filter.projectId ?? null,
      from: filter.from ?? null,
      to: filter.to ?? null,
      afterSeq: page.after === null ? null : bigintOf(page.after),
      limit: page.first + 1,
    };
    return { query, page };
  }

  /**
   * What the read is checked on: the project, when the list is narrowed to
   * one billing knows in this organization, else the organization itself.
   */
  private async resourceOf(organizationId: string, projectId: string | null): Promise<AuthzResource> {
    if (projectId === null) return { organizationId };
    const project = await this.hierarchy.findProject(this.pool, projectId);
    if (!project || project.organizationId !== organizationId) return { organizationId };
    return { organizationId, departmentId: project.departmentId, projectId };
  }
}
