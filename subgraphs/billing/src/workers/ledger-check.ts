import type pg from 'pg';
import type { Actor } from '@aifactory/contracts';
import type { Logger } from '@aifactory/logging';
import type { ServiceMetrics } from '@aifactory/telemetry';
import { LedgerCheckStore } from '../data/ledger-checks.js';
import { checkLedger, describeMismatch, ledgerVerification, type LedgerCheckResult } from '../domain/ledger-check.js';
import type { BillingStatus } from '../domain/service-status.js';
import { startPeriodicTask, type PeriodicTask } from './periodic-task.js';

const LOCK_NAME = 'billing.ledger_check';
const ACTOR: Actor = { type: 'system', id: 'billing.ledger-check' };
/** A check younger than this share of the interval (any instance's, or billing:verify's) makes a round skip. */
const RECENT_SHARE = 0.9;
const checks = new LedgerCheckStore();

export interface LedgerCheckOptions {
  pool: pg.Pool;
  status: BillingStatus;
  everyMs: number;
  logger: Logger;
}

export type ScheduledCheckOutcome =
  | { ran: false; reason: 'another instance is checking' | 'checked recently' }
  | { ran: true; check: LedgerCheckResult; statusChanged: boolean };

/**
 * One scheduled round: at most one instance at a time (a session advisory
 * lock on a connection of its own), and only when no check ran within the
 * interval, so N instances still check about once per interval. The verdict
 * turns billing's status degraded or back (BillingStatus.applyLedgerCheck).
 */
export async function runScheduledLedgerCheck(options: Omit<LedgerCheckOptions, 'logger'>): Promise<ScheduledCheckOutcome> {
  const { pool, status, everyMs } = options;
  const check = await checkUnderLock(pool, everyMs);
  if (!('id' in check)) return check;
  // After the lock's connection went back: applying the verdict takes a connection of its own (a pool of one suffices).
  const { changed } = await status.applyLedgerCheck(check, ACTOR);
  return { ran: true, check, statusChanged: changed };
}

/** The check itself, on the connection that holds the advisory lock; or why this round does not check. */
async function checkUnderLock(pool: pg.Pool, everyMs: number): Promise<LedgerCheckResult | Extract<ScheduledCheckOutcome, { ran: false }>> {
  const lock = await pool.connect();
  let broken = false;
  try {
    const { rows } = await lock.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [LOCK_NAME]);
    if (!rows[0]!.locked) return { ran: false, reason: 'another instance is checking' };
    try {
      if (await checks.checkedWithin(lock, (everyMs * RECENT_SHARE) / 1000)) return { ran: false, reason: 'checked recently' };
      return await checkLedger(lock, { trigger: 'scheduled' });
    } finally {
      await lock.query('SELECT pg_advisory_unlock(hashtext($1))', [LOCK_NAME]).catch(() => {
        // The connection failed: closing it is what lets go of the lock.
        broken = true;
      });
    }
  } finally {
    lock.release(broken);
  }
}

/**
 * The scheduled ledger check (BILLING_LEDGER_CHECK_INTERVAL_MS) and its
 * gauges, read at scrape time from the recorded checks so every instance
 * reports the same: `aif_billing_balance_verified_age_seconds` and
 * `aif_billing_ledger_mismatches`.
 */
export function startLedgerCheck(options: LedgerCheckOptions & { metrics: ServiceMetrics }): PeriodicTask {
  const { pool, logger, metrics } = options;
  registerLedgerGauges(metrics, pool);
  return startPeriodicTask({
    name: 'ledger check',
    everyMs: options.everyMs,
    logger,
    round: async () => {
      const outcome = await runScheduledLedgerCheck(options);
      if (!outcome.ran) return;
      const { check, statusChanged } = outcome;
      if (check.ok) {
        logger.info({ checkId: check.id, asOf: check.startedAt.toISOString(), statusChanged }, 'ledger check: the balance read model equals the ledger');
        return;
      }
      logger.error(
        { checkId: check.id, asOf: check.startedAt.toISOString(), mismatches: check.mismatches.length, statusChanged },
        'ledger check found mismatches; billing is degraded',
      );
      for (const mismatch of check.mismatches) logger.error({ checkId: check.id, mismatch }, describeMismatch(mismatch));
    },
  });
}

function registerLedgerGauges(metrics: ServiceMetrics, pool: pg.Pool): void {
  // A scrape collects both gauges at once; they share one query.
  let inFlight: ReturnType<typeof ledgerVerification> | undefined;
  const read = () => {
    inFlight ??= ledgerVerification(pool).finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
  metrics.gauge(
    'aif_billing_balance_verified_age_seconds',
    'Seconds since the last clean ledger check proved the balance read model (since the first check while none was clean; 0 before any).',
    [],
    async (gauge) => {
      // A scrape must not fail because the database is down: the gauge keeps its last value.
      const verification = await read().catch(() => undefined);
      if (verification) gauge.set(verification.unverifiedSeconds ?? 0);
    },
  );
  metrics.gauge('aif_billing_ledger_mismatches', "Mismatches the latest ledger check found (0 when clean or before any).", [], async (gauge) => {
    const verification = await read().catch(() => undefined);
    if (verification) gauge.set(verification.latestMismatches ?? 0);
  });
}
