import type pg from 'pg';
import type { LedgerAccountKind } from './account-directory.js';
import { postingOf, transferOf, type PostingRecord, type TransferRecord } from './ledger-store.js';
import { bigintOf } from '../domain/money.js';

/** A transfer with the kinds of the two accounts it moved money between. */
export interface TransferView extends TransferRecord {
  debitAccountKind: LedgerAccountKind;
  creditAccountKind: LedgerAccountKind;
}

export interface PostingView extends PostingRecord {
  transfers: TransferView[];
}

export type ReservationStatus = 'pending' | 'posted' | 'voided' | 'expired';

export interface ReservationView {
  id: string;
  seq: bigint;
  organizationId: string;
  departmentId: string;
  projectId: string;
  currency: string;
  amount: bigint;
  /** The budget month it holds in, `YYYY-MM-01`. */
  period: string;
  status: ReservationStatus;
  caller: string;
  description: string | null;
  expiresAt: Date;
  postedAmount: bigint | null;
  overReservation: boolean;
  postingId: string | null;
  createdAt: Date;
  resolvedAt: Date | null;
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

interface ReservationRow {
  id: string;
  seq: string;
  organization_id: string;
  department_id: string;
  project_id: string;
  currency: string;
  amount: string;
  period: string;
  status: ReservationStatus;
  caller: string;
  description: string | null;
  expires_at: Date;
  posted_amount: string | null;
  over_reservation: boolean;
  posting_id: string | null;
  created_at: Date;
  resolved_at: Date | null;
}

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

function reservationOf(row: ReservationRow): ReservationView {
  return {
    id: row.id,
    seq: bigintOf(row.seq),
    organizationId: row.organization_id,
    departmentId: row.department_id,
    projectId: row.project_id,
    currency: row.currency.trim(),
    amount: bigintOf(row.amount),
    period: row.period,
    status: row.status,
    caller: row.caller,
    description: row.description,
    expiresAt: row.expires_at,
    postedAmount: row.posted_amount === null ? null : bigintOf(row.posted_amount),
    overReservation: row.over_reservation,
    postingId: row.posting_id,
    createdAt: row.created_at,
    resolvedAt: row.resolved_at,
  };
}

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
      `SELECT p.id, p.seq, p.kind, p.organization_id, p.department_id, p.project_id, p.currency, p.fingerprint, p.description, p.metadata,
         p.actor, p.correlation_id, p.flagged, p.posted_at
       FROM postings p WHERE ${conditions.where} ORDER BY p.seq LIMIT ${limit}`,
      conditions.values,
    );
    const postings = rows.map(postingOf);
    const transfers = await this.transfersOfPostings(postings.map((posting) => posting.id));
    return postings.map((posting) => ({ ...posting, transfers: transfers.get(posting.id) ?? [] }));
  }

  /** The transfers of each posting, in the order they were posted. */
  async transfersOfPostings(postingIds: readonly string[]): Promise<Map<string, TransferView[]>> {
    const byPosting = new Map<string, TransferView[]>();
    if (postingIds.length === 0) return byPosting;
    const { rows } = await this.pool.query<TransferViewRow>(`${TRANSFER_SELECT} WHERE t.posting_id = ANY($1::text[]) ORDER BY t.posting_id, t.ordinal`, [
      postingIds,
    ]);
    for (const row of rows) {
      const transfer = transferViewOf(row);
      const list = byPosting.get(transfer.postingId);
      if (list) list.push(transfer);
      else byPosting.set(transfer.postingId, [transfer]);
    }
    return byPosting;
  }

  async reservations(query: ReservationQuery): Promise<ReservationView[]> {
    const conditions = historyConditions('r', query, 'created_at');
    conditions.add((p) => `r.status = ${p}::"ReservationStatus"`, query.status);
    const limit = conditions.placeholder(query.limit);
    const { rows } = await this.pool.query<ReservationRow>(
      `SELECT r.id, r.seq, r.organization_id, r.department_id, r.project_id, r.currency, r.amount, r.period::text AS period, r.status,
         r.caller, r.description, r.expires_at, r.posted_amount, r.over_reservation, r.posting_id, r.created_at, r.resolved_at
       FROM reservations r WHERE ${conditions.where} ORDER BY r.seq LIMIT ${limit}`,
      conditions.values,
    );
    return rows.map(reservationOf);
  }
}
