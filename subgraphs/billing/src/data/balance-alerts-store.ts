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

/**
 * The SQL of balance alerts. Each statement runs once per rated organization
 * inside rating's transaction, so each is a named (prepared) statement.
 */
export class BalanceAlertStore {
  /**
   * The organization's balance, its funds row locked. A caller that posted
   * in this transaction holds the lock already and this does not wait; any
   * other caller waits here, so no two checks of one organization overlap.
   */
  async lockBalance(tx: Tx, organizationId: string): Promise<SpendableBalance | undefined> {
    const { rows } = await tx.query<{ currency: string; paid: string; promotional: string }>({
      name: 'balance_alerts_lock_funds',
      text: 'SELECT currency, paid, promotional FROM organization_funds WHERE organization_id = $1 FOR UPDATE',
      values: [organizationId],
    });
    const row = rows[0];
    return row === undefined ? undefined : { currency: row.currency.trim(), balance: bigintOf(row.paid) + bigintOf(row.promotional) };
  }

  /**
   * Read in a statement of its own, after the funds lock is held: under READ
   * COMMITTED it then sees what the previous holder committed.
   */
  async state(tx: Tx, organizationId: string): Promise<BalanceAlertState> {
    const { rows } = await tx.query<AlertRow>({
      name: 'balance_alerts_state',
      text: 'SELECT low, low_announced_at, depleted, depleted_announced_at, version FROM balance_alerts WHERE organization_id = $1',
      values: [organizationId],
    });
    const row = rows[0];
    if (row === undefined) return NO_ALERTS;
    return {
      low: row.low,
      lowAnnouncedAt: row.low_announced_at,
      depleted: row.depleted,
      depletedAnnouncedAt: row.depleted_announced_at,
      version: row.version,
    };
  }

  /** Stores the state after a check; the organization's first change inserts its row. */
  async save(tx: Tx, organizationId: string, state: BalanceAlertState): Promise<void> {
    await tx.query({
      name: 'balance_alerts_save',
      text: `INSERT INTO balance_alerts (organization_id, low, low_announced_at, depleted, depleted_announced_at, version, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, CURRENT_TIMESTAMP)
       ON CONFLICT (organization_id) DO UPDATE SET low = EXCLUDED.low, low_announced_at = EXCLUDED.low_announced_at,
         depleted = EXCLUDED.depleted, depleted_announced_at = EXCLUDED.depleted_announced_at, version = EXCLUDED.version,
         updated_at = EXCLUDED.updated_at`,
      values: [organizationId, state.low, state.lowAnnouncedAt, state.depleted, state.depletedAnnouncedAt, state.version],
    });
  }
}
