import type { Actor } from '@aifactory/contracts';
import { bigintOf } from '../domain/money.js';
import type { Tx } from './transactions.js';

/** A posting as the ledger writes it. */
export interface NewPosting {
  id: string;
  kind: string;
  organizationId: string | null;
  departmentId: string | null;
  projectId: string | null;
  currency: string;
  fingerprint: string;
  description: string | null;
  metadata: Record<string, unknown>;
  actor: Actor;
  correlationId: string;
  flagged: boolean;
}

/** A posting row as the ledger returns it: what was written, with its place and time. */
export interface PostingRecord extends NewPosting {
  seq: bigint;
  postedAt: Date;
}

export interface NewTransfer {
  postingId: string;
  ordinal: number;
  debitAccountId: string;
  creditAccountId: string;
  amount: bigint;
  currency: string;
  code: string;
  organizationId: string | null;
  departmentId: string | null;
  projectId: string | null;
}

export interface TransferRecord extends NewTransfer {
  id: string;
  seq: bigint;
  postedAt: Date;
}

export interface FundsDelta {
  organizationId: string;
  paid: bigint;
  promotional: bigint;
  /** Reservation holds let go (a reservation posted in the same transaction). */
  released: bigint;
}

export interface BalanceDelta {
  accountId: string;
  shard: number;
  debits: bigint;
  credits: bigint;
}

export interface BudgetPool {
  level: 'organization' | 'department' | 'project';
  id: string;
}

export interface BudgetDelta extends BudgetPool {
  organizationId: string;
  spent: bigint;
}

export interface BudgetRelease extends BudgetPool {
  period: string;
  amount: bigint;
}

export const POSTING_COLUMNS = `id, seq, kind, organization_id, department_id, project_id, currency, fingerprint, description, metadata,
  actor, correlation_id, flagged, posted_at`;
const TRANSFER_COLUMNS = `id, seq, posting_id, ordinal, debit_account_id, credit_account_id, amount, currency, code,
  organization_id, department_id, project_id, posted_at`;

interface PostingRow {
  id: string;
  seq: string;
  kind: string;
  organization_id: string | null;
  department_id: string | null;
  project_id: string | null;
  currency: string;
  fingerprint: string;
  description: string | null;
  metadata: Record<string, unknown>;
  actor: Actor;
  correlation_id: string;
  flagged: boolean;
  posted_at: Date;
}

interface TransferRow {
  id: string;
  seq: string;
  posting_id: string;
  ordinal: number;
  debit_account_id: string;
  credit_account_id: string;
  amount: string;
  currency: string;
  code: string;
  organization_id: string | null;
  department_id: string | null;
  project_id: string | null;
  posted_at: Date;
}

export function postingOf(row: PostingRow): PostingRecord {
  return {
    id: row.id,
    seq: bigintOf(row.seq),
    kind: row.kind,
    organizationId: row.organization_id,
    departmentId: row.department_id,
    projectId: row.project_id,
    currency: row.currency.trim(),
    fingerprint: row.fingerprint,
    description: row.description,
    metadata: row.metadata,
    actor: row.actor,
    correlationId: row.correlation_id,
    flagged: row.flagged,
    postedAt: row.posted_at,
  };
}

export function transferOf(row: TransferRow): TransferRecord {
  return {
    id: row.id,
    seq: bigintOf(row.seq),
    postingId: row.posting_id,
    ordinal: row.ordinal,
    debitAccountId: row.debit_account_id,
    creditAccountId: row.credit_account_id,
    amount: bigintOf(row.amount),
    currency: row.currency.trim(),
    code: row.code,
    organizationId: row.organization_id,
    departmentId: row.department_id,
    projectId: row.project_id,
    postedAt: row.posted_at,
  };
}

/**
 * This transaction's budget month (UTC) by the database's clock, the month its
 * transfers are stamped with: posted_at keeps milliseconds, so the month is
 * taken from the time rounded the same way (a posting in a month's last half
 * millisecond belongs to the next).
 */
export const CURRENT_PERIOD_SQL = `date_trunc('month', CURRENT_TIMESTAMP::timestamptz(3) AT TIME ZONE 'UTC')::date`;

/** Items by the posting they belong to, in the order given. */
export function groupByPosting<T extends { postingId: string }>(items: readonly T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(item.postingId);
    if (group) group.push(item);
    else groups.set(item.postingId, [item]);
  }
  return groups;
}

const text = (values: readonly (bigint | number)[]) => values.map((value) => value.toString());

/**
 * The ledger's SQL. Every write runs inside the caller's transaction; the
 * statements take multi-row arrays, so a batch of postings costs the same
 * number of round trips as one. Each is a named (prepared) statement: a
 * connection plans it once, not on every posting.
 */
export class LedgerStore {
  /** Inserts the postings whose ids are new; returns those it inserted (the others already exist). */
  async insertPostings(tx: Tx, postings: readonly NewPosting[]): Promise<PostingRecord[]> {
    if (postings.length === 0) return [];
    const { rows } = await tx.query<PostingRow>({ name: 'ledger_insert_postings', text: `INSERT INTO postings (id, kind, organization_id, department_id, project_id, currency, fingerprint, description, metadata,
         actor, correlation_id, flagged)
       SELECT * FROM unnest($1::text[], $2::text[], $3::uuid[], $4::uuid[], $5::uuid[], $6::bpchar[], $7::text[], $8::text[],
         $9::jsonb[], $10::jsonb[], $11::text[], $12::boolean[])
       ON CONFLICT (id) DO NOTHING
       RETURNING ${POSTING_COLUMNS}`, values: [
        postings.map((p) => p.id),
        postings.map((p) => p.kind),
        postings.map((p) => p.organizationId),
        postings.map((p) => p.departmentId),
        postings.map((p) => p.projectId),
        postings.map((p) => p.currency),
        postings.map((p) => p.fingerprint),
        postings.map((p) => p.description),
        postings.map((p) => JSON.stringify(p.metadata)),
        postings.map((p) => JSON.stringify(p.actor)),
        postings.map((p) => p.correlationId),
        postings.map((p) => p.flagged),
      ] });
    return rows.map(postingOf);
  }

  async findPostings(tx: Tx, ids: readonly string[]): Promise<PostingRecord[]> {
    if (ids.length === 0) return [];
    const { rows } = await tx.query<PostingRow>({ name: 'ledger_find_postings', text: `SELECT ${POSTING_COLUMNS} FROM postings WHERE id = ANY($1::text[])`, values: [ids] });
    return rows.map(postingOf);
  }

  async transfersOf(tx: Tx, postingIds: readonly string[]): Promise<TransferRecord[]> {
    if (postingIds.length === 0) return [];
    const { rows } = await tx.query<TransferRow>({ name: 'ledger_transfers_of', text: `SELECT ${TRANSFER_COLUMNS} FROM transfers WHERE posting_id = ANY($1::text[]) ORDER BY posting_id, ordinal`, values: [postingIds] });
    return rows.map(transferOf);
  }

  async insertTransfers(tx: Tx, transfers: readonly NewTransfer[]): Promise<TransferRecord[]> {
    if (transfers.length === 0) return [];
    const { rows } = await tx.query<TransferRow>({ name: 'ledger_insert_transfers', text: `INSERT INTO transfers (posting_id, ordinal, debit_account_id, credit_account_id, amount, currency, code,
         organization_id, department_id, project_id)
       SELECT * FROM unnest($1::text[], $2::int2[], $3::uuid[], $4::uuid[], $5::int8[], $6::bpchar[], $7::text[],
         $8::uuid[], $9::uuid[], $10::uuid[])
       RETURNING ${TRANSFER_COLUMNS}`, values: [
        transfers.map((t) => t.postingId),
        transfers.map((t) => t.ordinal),
        transfers.map((t) => t.debitAccountId),
        transfers.map((t) => t.creditAccountId),
        text(transfers.map((t) => t.amount)),
        transfers.map((t) => t.currency),
        transfers.map((t) => t.code),
        transfers.map((t) => t.organizationId),
        transfers.map((t) => t.departmentId),
        transfers.map((t) => t.projectId),
      ] });
    return rows.map(transferOf);
  }

  /**
   * Locks the organizations' funds rows in id order. Every ledger writer
   * takes this lock first, so writers of one organization queue here and
   * never deadlock on the rows they take after it.
   */
  async lockFunds(tx: Tx, organizationIds: readonly string[]): Promise<Map<string, { paid: bigint; promotional: bigint; reserved: bigint; currency: string }>> {
    const locked = new Map<string, { paid: bigint; promotional: bigint; reserved: bigint; currency: string }>();
    if (organizationIds.length === 0) return locked;
    const { rows } = await tx.query<{ organization_id: string; paid: string; promotional: string; reserved: string; currency: string }>({ name: 'ledger_lock_funds', text: `SELECT organization_id, paid, promotional, reserved, currency FROM organization_funds
       WHERE organization_id = ANY($1::uuid[]) ORDER BY organization_id FOR UPDATE`, values: [[...new Set(organizationIds)]] });
    for (const row of rows) {
      locked.set(row.organization_id, {
        paid: bigintOf(row.paid),
        promotional: bigintOf(row.promotional),
        reserved: bigintOf(row.reserved),
        currency: row.currency.trim(),
      });
    }
    return locked;
  }

  /**
   * Applies funds deltas to rows `lockFunds` holds, summed per organization (an
   * UPDATE ... FROM applies only one of several source rows per target row);
   * returns how many rows it changed.
   */
  async applyFunds(tx: Tx, deltas: readonly FundsDelta[]): Promise<number> {
    if (deltas.length === 0) return 0;
    const result = await tx.query({ name: 'ledger_apply_funds', text: `UPDATE organization_funds f
       SET paid = f.paid + d.paid, promotional = f.promotional + d.promotional, reserved = f.reserved - d.released,
           updated_at = CURRENT_TIMESTAMP
       FROM (SELECT organization_id, sum(paid)::int8 AS paid, sum(promotional)::int8 AS promotional, sum(released)::int8 AS released
             FROM unnest($1::uuid[], $2::int8[], $3::int8[], $4::int8[]) AS u(organization_id, paid, promotional, released)
             GROUP BY organization_id) AS d
       WHERE f.organization_id = d.organization_id`, values: [deltas.map((d) => d.organizationId), text(deltas.map((d) => d.paid)), text(deltas.map((d) => d.promotional)), text(deltas.map((d) => d.released))] });
    return result.rowCount ?? 0;
  }

  /** Adds posted debits and credits to each (account, shard) row, in key order. */
  async applyBalances(tx: Tx, deltas: readonly BalanceDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    await tx.query({ name: 'ledger_apply_balances', text: `INSERT INTO account_balances AS b (account_id, shard, debits_posted, credits_posted)
       SELECT * FROM unnest($1::uuid[], $2::int2[], $3::int8[], $4::int8[]) AS d(account_id, shard, debits, credits)
       ORDER BY 1, 2
       ON CONFLICT (account_id, shard) DO UPDATE
       SET debits_posted = b.debits_posted + EXCLUDED.debits_posted, credits_posted = b.credits_posted + EXCLUDED.credits_posted,
           updated_at = CURRENT_TIMESTAMP`, values: [deltas.map((d) => d.accountId), deltas.map((d) => d.shard), text(deltas.map((d) => d.debits)), text(deltas.map((d) => d.credits))] });
  }

  /** Adds spend to the pools in this transaction's budget month (CURRENT_PERIOD_SQL). */
  async applySpend(tx: Tx, deltas: readonly BudgetDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    await tx.query({ name: 'ledger_apply_spend', text: `INSERT INTO budget_spend AS b (pool_level, pool_id, period, organization_id, spent)
       SELECT d.level, d.id, ${CURRENT_PERIOD_SQL}, d.organization_id, d.spent
       FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::int8[]) AS d(level, id, organization_id, spent)
       ORDER BY 1, 2
       ON CONFLICT (pool_level, pool_id, period) DO UPDATE SET spent = b.spent + EXCLUDED.spent, updated_at = CURRENT_TIMESTAMP`, values: [deltas.map((d) => d.level), deltas.map((d) => d.id), deltas.map((d) => d.organizationId), text(deltas.map((d) => d.spent))] });
  }

  /** Lets go of reservation holds on budget rows, which the reservation created; holds on one row are summed first. */
  async releaseBudgets(tx: Tx, releases: readonly BudgetRelease[]): Promise<void> {
    if (releases.length === 0) return;
    await tx.query({ name: 'ledger_release_budgets', text: `UPDATE budget_spend b SET reserved = b.reserved - d.amount, updated_at = CURRENT_TIMESTAMP
       FROM (SELECT level, id, period, sum(amount)::int8 AS amount
             FROM unnest($1::text[], $2::uuid[], $3::date[], $4::int8[]) AS u(level, id, period, amount)
             GROUP BY level, id, period) AS d
       WHERE b.pool_level = d.level AND b.pool_id = d.id AND b.period = d.period`, values: [releases.map((r) => r.level), releases.map((r) => r.id), releases.map((r) => r.period), text(releases.map((r) => r.amount))] });
  }
}
