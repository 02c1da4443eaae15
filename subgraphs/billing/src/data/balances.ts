import type pg from 'pg';
import { bigintOf } from '../domain/money.js';

/** An organization's funds as the balance read model holds them, stamped with when that was true. */
export interface FundsSnapshot {
  organizationId: string;
  currency: string;
  paid: bigint;
  promotional: bigint;
  reserved: bigint;
  /** The database's time of the read: the balance is exactly this as of then. */
  asOf: Date;
  /** The snapshot instant of the last ledger check that found no mismatch: the read model was proven as of then; null before any was. */
  verifiedAt: Date | null;
}

export type PoolLevel = 'organization' | 'department' | 'project';

/** Spend and open reservations of one budget pool in one month. */
export interface PoolSpend {
  level: PoolLevel;
  poolId: string;
  organizationId: string;
  /** `YYYY-MM-01`. */
  period: string;
  currency: string;
  spent: bigint;
  reserved: bigint;
}

interface PoolSpendRow {
  pool_level: PoolLevel;
  pool_id: string;
  organization_id: string;
  period: string;
  currency: string;
  spent: string;
  reserved: string;
}

const poolSpendOf = (row: PoolSpendRow): PoolSpend => ({
  level: row.pool_level,
  poolId: row.pool_id,
  organizationId: row.organization_id,
  period: row.period,
  currency: row.currency.trim(),
  spent: bigintOf(row.spent),
  reserved: bigintOf(row.reserved),
});

const POOL_SPEND_SELECT = `SELECT b.pool_level, b.pool_id, b.organization_id, b.period::text AS period, f.currency, b.spent, b.reserved
  FROM budget_spend b JOIN organization_funds f ON f.organization_id = b.organization_id`;

/** Reads of the balance read model (organization_funds, budget_spend) the ledger keeps in its transactions. */
export class BalanceStore {
  constructor(private readonly pool: pg.Pool) {}

  async funds(organizationId: string): Promise<FundsSnapshot | null> {
    const { rows } = await this.pool.query<{
      organization_id: string;
      currency: string;
      paid: string;
      promotional: string;
      reserved: string;
      as_of: Date;
      verified_at: Date | null;
    }>(
      `SELECT f.organization_id, f.currency, f.paid, f.promotional, f.reserved, CURRENT_TIMESTAMP AS as_of,
         (SELECT c.started_at FROM ledger_checks c WHERE c.ok ORDER BY c.finished_at DESC LIMIT 1) AS verified_at
       FROM organization_funds f WHERE f.organization_id = $1`,
      [organizationId],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      organizationId: row.organization_id,
      currency: row.currency.trim(),
      paid: bigintOf(row.paid),
      promotional: bigintOf(row.promotional),
      reserved: bigintOf(row.reserved),
      asOf: row.as_of,
      verifiedAt: row.verified_at,
    };
  }

  /** One pool's month; null when nothing was spent or held in it (no row yet). */
  async poolSpend(level: PoolLevel, poolId: string, period: string): Promise<PoolSpend | null> {
    const { rows } = await this.pool.query<PoolSpendRow>(
      `${POOL_SPEND_SELECT} WHERE b.pool_level = $1 AND b.pool_id = $2::uuid AND b.period = $3::date`,
      [level, poolId, period],
    );
    return rows[0] ? poolSpendOf(rows[0]) : null;
  }

  /** The organization's project pools of one month, by project id after `afterProjectId`. */
  async projectSpend(organizationId: string, period: string, afterProjectId: string | null, limit: number): Promise<PoolSpend[]> {
    const { rows } = await this.pool.query<PoolSpendRow>(
      `${POOL_SPEND_SELECT}
       WHERE b.organization_id = $1::uuid AND b.period = $2::date AND b.pool_level = 'project' AND ($3::uuid IS NULL OR b.pool_id > $3::uuid)
       ORDER BY b.pool_id LIMIT $4`,
      [organizationId, period, afterProjectId, limit],
    );
    return rows.map(poolSpendOf);
  }
}
