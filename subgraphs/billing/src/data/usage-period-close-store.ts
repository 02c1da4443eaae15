import type { Db, Tx } from './transactions.js';

/** A remainder chain's month, by its newest step, not closed yet. */
export interface OpenChain {
  organizationId: string;
  projectId: string;
  departmentId: string | null;
  currency: string;
  /** First day of the UTC month, YYYY-MM-DD. */
  period: string;
}

export interface ChainState {
  exactUnits: bigint;
  posted: bigint;
  /** Accepted usage of the chain's month still waiting for its rating. */
  unrated: number;
  /** Intervals of the project opened before the month ended and not closed: their windows and close may still bill into it. */
  openIntervals: number;
}

export interface PeriodClose extends OpenChain {
  exactUnits: bigint;
  posted: bigint;
  droppedUnits: bigint;
}

/** Remainder chains of months before `month` with no close yet (at most `limit`). */
export class UsagePeriodCloseStore {
  /** A page of them in (period, organization, project, currency) order, after `after`. */
  async openChains(db: Db, month: string, after: OpenChain | null, limit: number): Promise<OpenChain[]> {
    const { rows } = await db.query<{ organization_id: string; project_id: string; department_id: string | null; currency: string; period: string }>(
      `SELECT DISTINCT p.organization_id, p.project_id, pr.department_id, p.currency, p.period::text AS period
       FROM usage_postings p
       LEFT JOIN projects pr ON pr.id = p.project_id
       WHERE p.period < $1::date
         AND ($2::date IS NULL OR (p.period, p.organization_id, p.project_id, p.currency) > ($2::date, $3::uuid, $4::uuid, $5::bpchar))
         AND NOT EXISTS (SELECT 1 FROM usage_period_closes c
                         WHERE c.organization_id = p.organization_id AND c.project_id = p.project_id AND c.currency = p.currency AND c.period = p.period)
       ORDER BY period, organization_id, project_id, currency
       LIMIT $6`,
      [month, after?.period ?? null, after?.organizationId ?? null, after?.projectId ?? null, after?.currency ?? null, limit],
    );
    return rows.map((row) => ({
      organizationId: row.organization_id,
      projectId: row.project_id,
      departmentId: row.department_id,
      currency: row.currency.trim(),
      period: row.period,
    }));
  }

  /** The chain's newest step and its month's unrated usage, read under the organization's funds lock (rating appends steps under it). */
  async chainState(tx: Tx, chain: OpenChain): Promise<ChainState | null> {
    const { rows } = await tx.query<{ exact_units: string; posted: string; unrated: number; open_intervals: number }>(
      `SELECT p.exact_units::text AS exact_units, p.posted::text AS posted,
              (SELECT count(*)::int FROM usage_events e
               WHERE e.organization_id = p.organization_id AND e.project_id = p.project_id AND e.status = 'accepted'
                 AND e.occurred_at >= p.period AND e.occurred_at < p.period + interval '1 month'
                 AND NOT EXISTS (SELECT 1 FROM usage_ratings r WHERE r.event_id = e.event_id)) AS unrated,
              (SELECT count(*)::int FROM usage_intervals i
               WHERE i.organization_id = p.organization_id AND i.project_id = p.project_id AND i.closed_at IS NULL
                 AND i.opened_at < p.period + interval '1 month') AS open_intervals
       FROM usage_postings p
       WHERE p.organization_id = $1 AND p.project_id = $2 AND p.currency = $3 AND p.period = $4::date
       ORDER BY p.step DESC LIMIT 1`,
      [chain.organizationId, chain.projectId, chain.currency, chain.period],
    );
    const row = rows[0];
    return row ? { exactUnits: BigInt(row.exact_units), posted: BigInt(row.posted), unrated: row.unrated, openIntervals: row.open_intervals } : null;
  }

  async lockOrganization(tx: Tx, organizationId: string): Promise<void> {
    await tx.query('SELECT 1 FROM organization_funds WHERE organization_id = $1 FOR UPDATE', [organizationId]);
  }

  /** Records the close; false when another instance closed it first. */
  async insertClose(tx: Tx, close: PeriodClose): Promise<boolean> {
    const { rowCount } = await tx.query(
      `INSERT INTO usage_period_closes (organization_id, project_id, currency, period, exact_units, posted, dropped_units)
       VALUES ($1, $2, $3, $4::date, $5::numeric, $6::bigint, $7::numeric) ON CONFLICT DO NOTHING`,
      [close.organizationId, close.projectId, close.currency, close.period, close.exactUnits.toString(), close.posted.toString(), close.droppedUnits.toString()],
    );
    return rowCount === 1;
  }
}
