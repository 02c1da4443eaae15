import type { Actor } from '@aifactory/contracts';
import type { Queryable } from '@aifactory/events';
import { bigintOf } from '../domain/money.js';
import { CURRENT_PERIOD_SQL, type BudgetPool } from './ledger-store.js';
import type { Db, Tx } from './transactions.js';

export const RESERVATION_STATUSES = ['pending', 'posted', 'voided', 'expired'] as const;
export type ReservationStatus = (typeof RESERVATION_STATUSES)[number];

/** A reservation row as billing returns it. */
export interface ReservationRecord {
  id: string;
  /** Its place in the order reservations were made: the history lists' keyset. */
  seq: bigint;
  organizationId: string;
  departmentId: string;
  projectId: string;
  currency: string;
  amount: bigint;
  /** The budget month the hold counts in, as its first day (`2026-11-01`). */
  period: string;
  status: ReservationStatus;
  caller: string;
  idempotencyKey: string;
  fingerprint: string;
  description: string | null;
  actor: Actor;
  correlationId: string;
  expiresAt: Date;
  postedAmount: bigint | null;
  overReservation: boolean;
  postingId: string | null;
  createdAt: Date;
  resolvedAt: Date | null;
}

/** A pending reservation locked for resolution, and whether its time is up by the database's clock. */
export interface LockedReservation extends ReservationRecord {
  lapsed: boolean;
}

export interface ProjectFacts {
  organizationId: string;
  departmentId: string;
  status: string;
}

/** A budget pool the hold must fit in, with its limit; null: no limit set for it. */
export interface PoolLimit extends BudgetPool {
  /** Minor units, an exact decimal as policy stores it. */
  limit: string | null;
}

export interface NewHold {
  organizationId: string;
  departmentId: string;
  projectId: string;
  amount: bigint;
  ttlSeconds: number;
  caller: string;
  idempotencyKey: string;
  fingerprint: string;
  description: string | null;
  actor: Actor;
  correlationId: string;
  pools: readonly PoolLimit[];
}

/** What the hold statement did: the reservation when everything fit, else which part did not. */
export interface HoldOutcome {
  reservation: ReservationRecord | undefined;
  /** The organization's funds covered the amount (and hold it until the transaction ends). */
  fundsHeld: boolean;
  /** The pools whose limit the hold would pass, most specific first. */
  overLimit: BudgetPool[];
}

export interface Resolution {
  status: Exclude<ReservationStatus, 'pending'>;
  postedAmount?: bigint;
  overReservation?: boolean;
  postingId?: string | null;
}

export const RESERVATION_COLUMNS = `r.id, r.seq, r.organization_id, r.department_id, r.project_id, r.currency, r.amount, r.period::text AS period, r.status,
  r.caller, r.idempotency_key, r.fingerprint, r.description, r.actor, r.correlation_id, r.expires_at, r.posted_amount,
  r.over_reservation, r.posting_id, r.created_at, r.resolved_at`;

export interface ReservationRow {
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
  idempotency_key: string;
  fingerprint: string;
  description: string | null;
  actor: Actor;
  correlation_id: string;
  expires_at: Date;
  posted_amount: string | null;
  over_reservation: boolean;
  posting_id: string | null;
  created_at: Date;
  resolved_at: Date | null;
}

export function reservationOf(row: ReservationRow): ReservationRecord {
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
    idempotencyKey: row.idempotency_key,
    fingerprint: row.fingerprint,
    description: row.description,
    actor: row.actor,
    correlationId: row.correlation_id,
    expiresAt: row.expires_at,
    postedAmount: row.posted_amount === null ? null : bigintOf(row.posted_amount),
    overReservation: row.over_reservation,
    postingId: row.posting_id,
    createdAt: row.created_at,
    resolvedAt: row.resolved_at,
  };
}


/**
 * Reservations' SQL. A hold is one statement; resolving one locks its row
 * before the ledger locks anything (the lock order of every ledger writer:
 * reservation, organization funds, account balances, budget spend).
 */
export class ReservationStore {
  async findByKey(db: Db, caller: string, idempotencyKey: string): Promise<ReservationRecord | undefined> {
    const { rows } = await db.query<ReservationRow>({ name: 'reservation_find_by_key', text: `SELECT ${RESERVATION_COLUMNS} FROM reservations r WHERE r.caller = $1 AND r.idempotency_key = $2`, values: [
      caller,
      idempotencyKey,
    ] });
    return rows[0] === undefined ? undefined : reservationOf(rows[0]);
  }

  /** The project as billing's read model of iam has it; undefined before its event arrived. */
  async project(db: Db, projectId: string): Promise<ProjectFacts | undefined> {
    const { rows } = await db.query<{ organization_id: string; department_id: string; status: string }>({ name: 'reservation_project', text: 'SELECT organization_id, department_id, status FROM projects WHERE id = $1', values: [projectId] });
    const row = rows[0];
    return row === undefined ? undefined : { organizationId: row.organization_id, departmentId: row.department_id, status: row.status };
  }

  /**
   * Holds the amount in one statement. The funds update comes first: the
   * budget upsert reads its result, so it runs only once the organization's
   * funds row is locked and covered the amount, and a refusal for funds
   * touches no budget row. Each pool's row of the current month is then
   * created or raised under its row lock and checked as it now stands:
   * spent + reserved (with holds of earlier months still open, which will
   * post into this one) within the pool's limit. The reservation row is
   * inserted only when every part fit; otherwise the caller rolls the
   * transaction back, which undoes whatever part did apply.
   */
  async hold(tx: Tx, hold: NewHold): Promise<HoldOutcome> {
    const { rows } = await tx.query<ReservationRow & { funds_held: boolean; over_limit: string[] | null }>({ name: 'reservation_hold', text: `WITH funds AS (
         UPDATE organization_funds f SET reserved = f.reserved + $2::int8, updated_at = CURRENT_TIMESTAMP
         WHERE f.organization_id = $1::uuid AND f.paid::numeric + f.promotional - f.reserved >= $2::int8
         RETURNING f.organization_id, f.currency
       ),
       pools AS (
         SELECT p.level, p.id, p.cap, p.ordinal FROM unnest($3::text[], $4::uuid[], $5::numeric[]) WITH ORDINALITY AS p(level, id, cap, ordinal)
       ),
       budgets AS (
         INSERT INTO budget_spend AS b (pool_level, pool_id, period, organization_id, reserved)
         SELECT p.level, p.id, ${CURRENT_PERIOD_SQL}, funds.organization_id, $2::int8 FROM pools p CROSS JOIN funds
         ORDER BY 1, 2
         ON CONFLICT (pool_level, pool_id, period) DO UPDATE
         SET reserved = b.reserved + EXCLUDED.reserved, updated_at = CURRENT_TIMESTAMP
         RETURNING b.pool_level, b.pool_id, b.spent, b.reserved
       ),
       -- Holds made in earlier months still count: they post into this month when they settle.
       earlier AS (
         SELECT e.pool_level, e.pool_id, sum(e.reserved) AS reserved FROM budget_spend e JOIN pools p ON e.pool_level = p.level AND e.pool_id = p.id
         WHERE e.period < ${CURRENT_PERIOD_SQL} AND e.reserved > 0 GROUP BY e.pool_level, e.pool_id
       ),
       checked AS (
         SELECT p.level, p.id, p.ordinal,
           (b.pool_id IS NOT NULL AND (p.cap IS NULL OR b.spent::numeric + b.reserved + coalesce(e.reserved, 0) <= p.cap)) AS fits
         FROM pools p LEFT JOIN budgets b ON b.pool_level = p.level AND b.pool_id = p.id
           LEFT JOIN earlier e ON e.pool_level = p.level AND e.pool_id = p.id
       ),
       inserted AS (
         INSERT INTO reservations AS r (organization_id, department_id, project_id, currency, amount, period, caller, idempotency_key,
           fingerprint, description, actor, correlation_id, expires_at)
         SELECT funds.organization_id, $6::uuid, $7::uuid, funds.currency, $2::int8, ${CURRENT_PERIOD_SQL}, $8, $9, $10, $11, $12::jsonb, $13,
           CURRENT_TIMESTAMP + $14::int * interval '1 second'
         FROM funds
         WHERE NOT EXISTS (SELECT 1 FROM checked WHERE NOT fits)
         RETURNING ${RESERVATION_COLUMNS}
       )
       SELECT EXISTS (SELECT 1 FROM funds) AS funds_held,
              ARRAY(SELECT c.level || ':' || c.id FROM checked c WHERE NOT c.fits ORDER BY c.ordinal) AS over_limit,
              inserted.*
       FROM (SELECT 1) AS one LEFT JOIN inserted ON true`, values: [
        hold.organizationId,
        hold.amount.toString(),
        hold.pools.map((pool) => pool.level),
        hold.pools.map((pool) => pool.id),
        hold.pools.map((pool) => pool.limit),
        hold.departmentId,
        hold.projectId,
        hold.caller,
        hold.idempotencyKey,
        hold.fingerprint,
        hold.description,
        JSON.stringify(hold.actor),
        hold.correlationId,
        hold.ttlSeconds,
      ] });
    const row = rows[0]!;
    const overLimit = (row.over_limit ?? []).map((text): BudgetPool => {
      const [level, id] = text.split(':') as [BudgetPool['level'], string];
      return { level, id };
    });
    return { reservation: row.id === null ? undefined : reservationOf(row), fundsHeld: row.funds_held, overLimit: row.funds_held ? overLimit : [] };
  }

  /** What the organization could reserve now (paid + promotional - reserved); undefined when billing has no funds row for it. */
  async available(db: Queryable, organizationId: string): Promise<{ available: bigint; currency: string } | undefined> {
    const { rows } = await db.query<{ available: string; currency: string }>(
      'SELECT (paid + promotional - reserved)::text AS available, currency FROM organization_funds WHERE organization_id = $1',
      [organizationId],
    );
    const row = rows[0];
    return row === undefined ? undefined : { available: bigintOf(row.available), currency: row.currency.trim() };
  }

  /** What is left of a pool's limit this month (never below zero), and the month. */
  async budgetLeft(db: Queryable, pool: BudgetPool, limit: string): Promise<{ left: bigint; period: string }> {
    const { rows } = await db.query<{ remaining: string; period: string }>(
      `SELECT GREATEST(floor($3::numeric) - COALESCE(b.spent + b.reserved, 0), 0)::text AS remaining, m.period::text AS period
       FROM (SELECT ${CURRENT_PERIOD_SQL} AS period) m
       LEFT JOIN budget_spend b ON b.pool_level = $1 AND b.pool_id = $2 AND b.period = m.period`,
      [pool.level, pool.id, limit],
    );
    return { left: bigintOf(rows[0]!.remaining), period: rows[0]!.period };
  }

  /** Locks the caller's reservation for resolution; undefined when the caller has none by that id. */
  async lock(tx: Tx, caller: string, id: string): Promise<LockedReservation | undefined> {
    const { rows } = await tx.query<ReservationRow & { lapsed: boolean }>(
      `SELECT ${RESERVATION_COLUMNS}, r.expires_at <= CURRENT_TIMESTAMP AS lapsed FROM reservations r WHERE r.id = $1 AND r.caller = $2 FOR UPDATE`,
      [id, caller],
    );
    const row = rows[0];
    return row === undefined ? undefined : { ...reservationOf(row), lapsed: row.lapsed };
  }

  /**
   * Locks up to `limit` pending reservations whose time is up, earliest
   * first, skipping any another transaction holds (a post, a void, another
   * instance's sweep), so sweepers never queue behind each other.
   */
  async lockLapsed(tx: Tx, limit: number): Promise<ReservationRecord[]> {
    const { rows } = await tx.query<ReservationRow>(
      `SELECT ${RESERVATION_COLUMNS} FROM reservations r WHERE r.status = 'pending' AND r.expires_at <= CURRENT_TIMESTAMP
       ORDER BY r.expires_at, r.id LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [limit],
    );
    return rows.map(reservationOf);
  }

  /** Resolves locked pending reservations; returns them as they are now. */
  async resolve(tx: Tx, ids: readonly string[], resolution: Resolution): Promise<ReservationRecord[]> {
    const { rows } = await tx.query<ReservationRow>(
      `UPDATE reservations r SET status = $2::"ReservationStatus", posted_amount = $3::int8, over_reservation = $4,
         posting_id = $5, resolved_at = CURRENT_TIMESTAMP
       WHERE r.id = ANY($1::uuid[]) AND r.status = 'pending'
       RETURNING ${RESERVATION_COLUMNS}`,
      [
        ids,
        resolution.status,
        resolution.postedAmount === undefined ? null : resolution.postedAmount.toString(),
        resolution.overReservation ?? false,
        resolution.postingId ?? null,
      ],
    );
    return rows.map(reservationOf);
  }

  async openCount(db: Queryable): Promise<number> {
    const { rows } = await db.query<{ open: number }>(`SELECT count(*)::int AS open FROM reservations WHERE status = 'pending'`);
    return rows[0]!.open;
  }
}
