import type pg from 'pg';
import { systemClock, type Clock } from '@aifactory/clock';
import { AccountDirectory } from '../data/account-directory.js';
import type { BalanceAlerts } from './balance-alerts.js';
import { Ledger } from './ledger.js';

/**
 * billing's ledger as every process that posts builds it (the server, a
 * rating worker, billing:reconcile): each posting that changes an
 * organization's paid plus promotional balance checks its low-balance and
 * depleted alerts in the same transaction, at the threshold its usage last
 * brought. One mechanism for every kind of posting, so no caller checks
 * alerts itself and no two processes announce differently.
 */
export function alertingLedger(pool: pg.Pool, alerts: Pick<BalanceAlerts, 'checkAllIn'>, clock: Clock = systemClock): Ledger {
  return new Ledger(pool, new AccountDirectory(pool), {
    onFundsChanged: async (tx, organizationIds) => {
      await alerts.checkAllIn(tx, organizationIds.map((organizationId) => ({ organizationId, threshold: null })), clock.now());
    },
  });
}
