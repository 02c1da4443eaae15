import type pg from 'pg';
import type { LedgerAccountKind } from './account-directory.js';
import { RESERVATION_COLUMNS, reservationOf, type ReservationRecord, type ReservationRow, type ReservationStatus } from './reservation-store.js';
import { groupByPosting, POSTING_COLUMNS, postingOf, transferOf, type PostingRecord, type TransferRecord } from './ledger-store.js';

/** A transfer with the kinds of the two accounts it moved money between. */
export interface TransferView extends TransferRecord {
  debitAccountKind: LedgerAccountKind;
  creditAccountKind: LedgerAccountKind;
}

export interface PostingView extends PostingRecord {
  transfers: TransferView[];
}

/** What every history list filters on: the organization, optionally one project, a time range and a keyset position. */
export interface HistoryQuery {
  organizationId: string;
  projectId?: string | null;
  /** Inclusive. */
  from?: Date | null;
  /** Exclusive. */
  to?: Date | null;
  /** Rows after this seq (exclusive). */
  afterSeq?: bigint | null;
  /** Rows to return; the caller asks for one more than it shows. */
  limit: number;
}

export interface TransferQuery extends HistoryQuery {
  code?: string | null;
  postingId?: string | null;
}

export interface PostingQuery extends HistoryQuery {
  kind?: string | null;
  flagged?: boolean | null;
}

export interface ReservationQuery extends HistoryQuery {
  status?: ReservationStatus | null;
}

const TRANSFER_SELECT = `SELECT t.id, t.seq, t.posting_id, t.ordinal, t.debit_account_id, t.credit_account_id, t.amount, t.currency, t.code,
    t.organization_id, t.department_id, t.project_id, t.posted_at, d.kind::text AS debit_kind, c.kind::text AS credit_kind
  FROM transfers t
  JOIN accounts d ON d.id = t.debit_account_id
  JOIN accounts c ON c.id = t.credit_account_id`;

type TransferViewRow = Parameters<typeof transferOf>[0] & { debit_kind: LedgerAccountKind; credit_kind: LedgerAccountKind };

/**
 * Conditions of one list query, numbered as they are added, so each filter
 * the caller left out costs nothing and the planner sees a plain
 * `organization_id = $1 AND seq > $n ORDER BY seq` on the (org, seq) index.
 */
class Conditions {
  readonly values: unknown[] = [];
  private readonly parts: string[] = [];

  add(sql: (placeholder: string) => string, value: unknown): void {
    if (value === null || value === undefined) return;
    this.values.push(value);
    this.parts.push(sql(`$${this.values.length}`));
  }

  placeholder(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }

  get where(): string {
    return this.parts.join(' AND ');
  }
}

function historyConditions(alias: string, query: HistoryQuery, timeColumn: string): Conditions {
  const conditions = new Conditions();
  conditions.add((p) => `${alias}.organization_id = ${p}::uuid`, query.organizationId);
  conditions.add((p) => `${alias}.project_id = ${p}::uuid`, query.projectId);
  conditions.add((p) => `${alias}.${timeColumn} >= ${p}::timestamptz`, query.from);
  conditions.add((p) => `${alias}.${timeColumn} < ${p}::timestamptz`, query.to);
  conditions.add((p) => `${alias}.seq > ${p}::int8`, query.afterSeq?.toString());
  return conditions;
}

const transferViewOf = (row: TransferViewRow): TransferView => ({
  ...transferOf(row),
  debitAccountKind: row.debit_kind,
  creditAccountKind: row.credit_kind,
});

/**
 * Reads of an organization's ledger history: transfers, postings (with their
 * transfers) and reservations, each in `seq` order from a keyset position.
 * Read-only: the ledger and reservations write these tables.
 */
export class LedgerHistoryStore {
  constructor(private readonly pool: pg.Pool) {}

  async transfers(query: TransferQuery): Promise<TransferView[]> {
    const conditions = historyConditions('t', query, 'posted_at');
    conditions.add((p) => `t.code = ${p}`, query.code);
    conditions.add((p) => `t.posting_id = ${p}`, query.postingId);
    const limit = conditions.placeholder(query.limit);
    const { rows } = await this.pool.query<TransferViewRow>(`${TRANSFER_SELECT} WHERE ${conditions.where} ORDER BY t.seq LIMIT ${limit}`, conditions.values);
    return rows.map(transferViewOf);
  }

  async postings(query: PostingQuery): Promise<PostingView[]> {
    const conditions = historyConditions('p', query, 'posted_at');
    conditions.add((p) => `p.kind = ${p}`, query.kind);
    conditions.add((p) => `p.flagged = ${p}`, query.flagged);
    const limit = conditions.placeholder(query.limit);
    const { rows } = await this.pool.query<Parameters<typeof postingOf>[0]>(
      `SELECT ${POSTING_COLUMNS} FROM postings p WHERE ${conditions.where} ORDER BY p.seq LIMIT ${limit}`,
      conditions.values,
    );
    const postings = rows.map(postingOf);
    const transfers = await this.transfersOfPostings(postings.map((posting) => posting.id));
    return postings.map((posting) => ({ ...posting, transfers: transfers.get(posting.id) ?? [] }));
  }

  /** The transfers of each posting, in the order they were posted. */
  async transfersOfPostings(postingIds: readonly string[]): Promise<Map<string, TransferView[]>> {
    if (postingIds.length === 0) return new Map();
    const { rows } = await this.pool.query<TransferViewRow>(`${TRANSFER_SELECT} WHERE t.posting_id = ANY($1::text[]) ORDER BY t.posting_id, t.ordinal`, [
      postingIds,
    ]);
    return groupByPosting(rows.map(transferViewOf));
  }

  async reservations(query: ReservationQuery): Promise<ReservationRecord[]> {
    const conditions = historyConditions('r', query, 'created_at');
    conditions.add((p) => `r.status = ${p}::"ReservationStatus"`, query.status);
    const limit = conditions.placeholder(query.limit);
    const { rows } = await this.pool.query<ReservationRow>(
      `SELECT ${RESERVATION_COLUMNS} FROM reservations r WHERE ${conditions.where} ORDER BY r.seq LIMIT ${limit}`,
      conditions.values,
    );
    return rows.map(reservationOf);
  }
}
