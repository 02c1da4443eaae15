import { bigintOf } from '../domain/money.js';
import type { Tx } from './transactions.js';

/** What an organization was last told about its balance (`balance_alerts`). */
export interface BalanceAlertState {
  /** A low warning stands: the balance was at or below the threshold when last checked. */
  low: boolean;
  lowAnnouncedAt: Date | null;
  /** A depletion stands: the balance was at or below zero when last checked. */
  depleted: boolean;
  depletedAnnouncedAt: Date | null;
  /** Announcements so far; the next one is this plus one. */
  version: number;
}

/** An organization with no row yet was never warned. */
export const NO_ALERTS: BalanceAlertState = Object.freeze({
  low: false,
  lowAnnouncedAt: null,
  depleted: false,
  depletedAnnouncedAt: null,
  version: 0,
});

/** The spendable balance: paid plus promotional, in the organization's currency. */
export interface SpendableBalance {
  currency: string;
  balance: bigint;
}

interface AlertRow {
  low: boolean;
  low_announced_at: Date | null;
  depleted: boolean;
  depleted_announced_at: Date | null;
  version: number;
}

/** An organization's stored alert state, with the threshold its last usage brought (null: none yet). */
export interface StoredBalanceAlerts {
  state: BalanceAlertState;
  threshold: bigint | null;
}

/** A row to write: the state after a check, and the threshold to keep. */
export interface BalanceAlertWrite {
  organizationId: string;
  state: BalanceAlertState;
  threshold: bigint | null;
}

/**
 * The SQL of balance alerts: a few statements per check, however many
 * organizations it covers, each a named (prepared) statement since every
 * posting that moves funds runs them.
 */
export class BalanceAlertStore {
  /**
   * Several organizations' balances, their funds rows locked in id order
   * (the ledger's lock order); rows this transaction holds already do not wait.
   */
  async lockBalances(tx: Tx, organizationIds: readonly string[]): Promise<Map<string, SpendableBalance>> {
    const locked = new Map<string, SpendableBalance>();
    if (organizationIds.length === 0) return locked;
    const { rows } = await tx.query<{ organization_id: string; currency: string; paid: string; promotional: string }>({
      name: 'balance_alerts_lock_funds_many',
      text: `SELECT organization_id, currency, paid, promotional FROM organization_funds
       WHERE organization_id = ANY($1::uuid[]) ORDER BY organization_id FOR UPDATE`,
      values: [[...new Set(organizationIds)]],
    });
    for (const row of rows) {
      locked.set(row.organization_id, { currency: row.currency.trim(), balance: bigintOf(row.paid) + bigintOf(row.promotional) });
    }
    return locked;
  }

  /** Several organizations' stored states and thresholds, read after their funds locks are held; one without a row is absent. */
  async states(tx: Tx, organizationIds: readonly string[]): Promise<Map<string, StoredBalanceAlerts>> {
    const found = new Map<string, StoredBalanceAlerts>();
    if (organizationIds.length === 0) return found;
    const { rows } = await tx.query<AlertRow & { organization_id: string; threshold: string | null }>({
      name: 'balance_alerts_states',
      text: `SELECT organization_id, low, low_announced_at, depleted, depleted_announced_at, version, threshold::text AS threshold
       FROM balance_alerts WHERE organization_id = ANY($1::uuid[])`,
      values: [[...new Set(organizationIds)]],
    });
    for (const row of rows) {
      found.set(row.organization_id, {
        state: {
          low: row.low,
          lowAnnouncedAt: row.low_announced_at,
          depleted: row.depleted,
          depletedAnnouncedAt: row.depleted_announced_at,
          version: row.version,
        },
        threshold: row.threshold === null ? null : bigintOf(row.threshold),
      });
    }
    return found;
  }

  /** Stores the thresholds alone (usage brought them), in id order; states are left as they are. */
  async saveThresholds(tx: Tx, thresholds: readonly { organizationId: string; threshold: bigint }[]): Promise<void> {
    if (thresholds.length === 0) return;
    const sorted = [...thresholds].sort((a, b) => (a.organizationId < b.organizationId ? -1 : a.organizationId > b.organizationId ? 1 : 0));
    await tx.query({
      name: 'balance_alerts_save_thresholds',
      text: `INSERT INTO balance_alerts (organization_id, threshold)
       SELECT * FROM unnest($1::uuid[], $2::int8[])
       ON CONFLICT (organization_id) DO UPDATE SET threshold = EXCLUDED.threshold, updated_at = CURRENT_TIMESTAMP
       WHERE balance_alerts.threshold IS DISTINCT FROM EXCLUDED.threshold`,
      values: [sorted.map((t) => t.organizationId), sorted.map((t) => t.threshold.toString())],
    });
  }

  /** Stores several states and thresholds in one statement, in id order; an organization's first write inserts its row. */
  async saveAll(tx: Tx, writes: readonly BalanceAlertWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const sorted = [...writes].sort((a, b) => (a.organizationId < b.organizationId ? -1 : a.organizationId > b.organizationId ? 1 : 0));
    await tx.query({
      name: 'balance_alerts_save_all',
      text: `INSERT INTO balance_alerts (organization_id, low, low_announced_at, depleted, depleted_announced_at, version, threshold, updated_at)
       SELECT organization_id, low, low_announced_at, depleted, depleted_announced_at, version, threshold, CURRENT_TIMESTAMP
       FROM unnest($1::uuid[], $2::boolean[], $3::timestamptz[], $4::boolean[], $5::timestamptz[], $6::int4[], $7::int8[])
         AS w(organization_id, low, low_announced_at, depleted, depleted_announced_at, version, threshold)
       ON CONFLICT (organization_id) DO UPDATE SET low = EXCLUDED.low, low_announced_at = EXCLUDED.low_announced_at,
         depleted = EXCLUDED.depleted, depleted_announced_at = EXCLUDED.depleted_announced_at, version = EXCLUDED.version,
         threshold = EXCLUDED.threshold, updated_at = EXCLUDED.updated_at`,
      values: [
        sorted.map((w) => w.organizationId),
        sorted.map((w) => w.state.low),
        sorted.map((w) => w.state.lowAnnouncedAt),
        sorted.map((w) => w.state.depleted),
        sorted.map((w) => w.state.depletedAnnouncedAt),
        sorted.map((w) => w.state.version),
        sorted.map((w) => (w.threshold === null ? null : w.threshold.toString())),
      ],
    });
  }
}
