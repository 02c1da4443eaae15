import { balanceDepletedV1, balanceLowWarningV1, type Actor, type EventEnvelope } from '@aifactory/contracts';
import { AppError } from '@aifactory/errors';
import { writeOutboxEvent } from '@aifactory/events';
import { BalanceAlertStore, NO_ALERTS, type BalanceAlertState, type BalanceAlertWrite } from '../data/balance-alerts-store.js';
import type { Tx } from '../data/transactions.js';
import { formatAmount } from './money.js';

/** A low balance is announced again after this long if it is still low (ARCHITECTURE.md, Seed conflicts). */
export const LOW_WARNING_REPEAT_MS = 24 * 60 * 60 * 1000;

/**
 * `billing.balance.low_warning_threshold`'s registry default, for an
 * organization none of whose usage carried one (the same as usage-rating.ts's
 * DEFAULT_LOW_BALANCE_THRESHOLD).
 */
const DEFAULT_THRESHOLD = 1000n;

/** One organization to check: its threshold, or null for the one stored with its alerts (else the default). */
export interface BalanceCheck {
  organizationId: string;
  threshold: bigint | null;
}

const ACTOR: Actor = { type: 'system', id: 'billing.balance-alerts' };

export type BalanceAnnouncement =
  | { event: 'low_warning'; reason: 'crossed' | 'still_low' }
  | { event: 'depleted'; reason: 'crossed' };

export interface BalanceAlertDecision {
  /** The state to store; `version` counts the announcements below. */
  next: BalanceAlertState;
  /** In the order their versions are given: a low warning before a depletion. */
  announcements: BalanceAnnouncement[];
}

/**
 * What a balance check announces (ARCHITECTURE.md: low balance once per
 * downward crossing and again after 24 h if still low; depletion once per
 * crossing). Low is at or below the threshold and depleted at or below zero;
 * a balance back above either clears it, so the next crossing is announced.
 * A clock behind the last warning never repeats it early.
 */
export function decideBalanceAlerts(state: BalanceAlertState, balance: bigint, threshold: bigint, now: Date): BalanceAlertDecision {
  const announcements: BalanceAnnouncement[] = [];
  const next: BalanceAlertState = { ...state };
  if (balance <= threshold) {
    if (!state.low) announcements.push({ event: 'low_warning', reason: 'crossed' });
    else if (state.lowAnnouncedAt === null || now.getTime() - state.lowAnnouncedAt.getTime() >= LOW_WARNING_REPEAT_MS) {
      announcements.push({ event: 'low_warning', reason: 'still_low' });
    }
    next.low = true;
    if (announcements.length > 0) next.lowAnnouncedAt = now;
  } else {
    next.low = false;
  }
  if (balance <= 0n) {
    if (!state.depleted) {
      announcements.push({ event: 'depleted', reason: 'crossed' });
      next.depletedAnnouncedAt = now;
    }
    next.depleted = true;
  } else {
    next.depleted = false;
  }
  next.version = state.version + announcements.length;
  return { next, announcements };
}

function unchanged(before: BalanceAlertState, after: BalanceAlertState): boolean {
  return before.low === after.low && before.depleted === after.depleted && before.version === after.version;
}

/**
 * Low-balance warnings and depletion notices. Checked inside the
 * transaction that moved the balance, with its events written to billing's
 * outbox there, so an announcement is published if and only if the posting
 * that caused it commits, and exactly once however many postings race.
 */
export class BalanceAlerts {
  private readonly store = new BalanceAlertStore();

  constructor(private readonly options: { subjectPrefix?: string } = {}) {}

  /**
   * Checks one organization's balance after a posting: `checkAllIn` for one.
   * `threshold` is `billing.balance.low_warning_threshold` at the
   * organization, stored for later checks without one.
   */
  checkIn(tx: Tx, organizationId: string, threshold: bigint, now: Date): Promise<EventEnvelope[]> {
    return this.checkAllIn(tx, [{ organizationId, threshold }], now);
  }

  /**
   * Records the thresholds usage brought (the policy at its ingestion) before
   * its postings, so the ledger's funds observer already checks against them
   * and never announces under a stale one. The caller holds the funds rows.
   */
  async recordThresholdsIn(tx: Tx, thresholds: ReadonlyMap<string, bigint>): Promise<void> {
    await this.store.saveThresholds(tx, [...thresholds].map(([organizationId, threshold]) => ({ organizationId, threshold })));
  }

  /**
   * Checks several organizations' balances after postings, in a few
   * statements for all of them: their funds rows locked in id order (a
   * caller that posted holds them already and does not wait; any other
   * caller waits there, so no two checks of one organization overlap), their
   * alert rows read after that, the changed rows written at once. A check's
   * threshold is the one given, stored in the row for later checks, or with
   * null the row's stored threshold, else DEFAULT_LOW_BALANCE_THRESHOLD. An
   * organization named twice is checked once, with the last threshold given.
   * Idempotent: a second check in the same transaction finds the state
   * already updated and announces nothing new. Returns the events written,
   * each its organization balance's next version.
   */
  async checkAllIn(tx: Tx, checks: readonly BalanceCheck[], now: Date): Promise<EventEnvelope[]> {
    if (checks.length === 0) return [];
    const given = new Map<string, bigint | null>();
    for (const { organizationId, threshold } of checks) {
      if (threshold !== null || !given.has(organizationId)) given.set(organizationId, threshold);
    }
    const organizationIds = [...given.keys()].sort();
    const funds = await this.store.lockBalances(tx, organizationIds);
    for (const organizationId of organizationIds) {
      if (!funds.has(organizationId)) {
        throw new AppError('BILLING_ORGANIZATION_UNKNOWN', 'Billing has no accounts for this organization yet', { details: { organizationId } });
      }
    }
    // Read in a statement of its own, after the funds locks are held: under READ COMMITTED it then sees what the previous holder committed.
    const stored = await this.store.states(tx, organizationIds);
    const writes: BalanceAlertWrite[] = [];
    const events: { organizationId: string; currency: string; balance: bigint; threshold: bigint; announcement: BalanceAnnouncement; version: number }[] = [];
    for (const organizationId of organizationIds) {
      const { currency, balance } = funds.get(organizationId)!;
      const row = stored.get(organizationId);
      const state = row?.state ?? NO_ALERTS;
      const storedThreshold = row?.threshold ?? null;
      const threshold = given.get(organizationId) ?? storedThreshold ?? DEFAULT_THRESHOLD;
      const { next, announcements } = decideBalanceAlerts(state, balance, threshold, now);
      // Most checks find nothing new: they write nothing, not even the row (a threshold is kept only where it differs from what applies already).
      const keep = given.get(organizationId) ?? storedThreshold;
      if (unchanged(state, next) && threshold === (storedThreshold ?? DEFAULT_THRESHOLD)) continue;
      writes.push({ organizationId, state: next, threshold: keep });
      for (const [index, announcement] of announcements.entries()) {
        events.push({ organizationId, currency, balance, threshold, announcement, version: state.version + index + 1 });
      }
    }
    await this.store.saveAll(tx, writes);
    const written: EventEnvelope[] = [];
    for (const { organizationId, currency, balance, threshold, announcement, version } of events) {
      const definition = announcement.event === 'low_warning' ? balanceLowWarningV1 : balanceDepletedV1;
      written.push(
        await writeOutboxEvent(
          tx,
          {
            type: definition.type,
            version: definition.version,
            payload: {
              organizationId,
              currency,
              balance: formatAmount(balance),
              threshold: formatAmount(threshold),
              reason: announcement.reason,
              announcedAt: now.toISOString(),
            },
            aggregateId: organizationId,
            aggregateVersion: version,
            organizationId,
            actor: ACTOR,
            occurredAt: now,
          },
          { subjectPrefix: this.options.subjectPrefix },
        ),
      );
    }
    return written;
  }
}
