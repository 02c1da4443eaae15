import { balanceDepletedV1, balanceLowWarningV1, type Actor, type EventEnvelope } from '@aifactory/contracts';
import { AppError } from '@aifactory/errors';
import { writeOutboxEvent } from '@aifactory/events';
import { BalanceAlertStore, type BalanceAlertState } from '../data/balance-alerts-store.js';
import type { Tx } from '../data/transactions.js';
import { formatAmount } from './money.js';

/** A low balance is announced again after this long if it is still low (ARCHITECTURE.md, Seed conflicts). */
export const LOW_WARNING_REPEAT_MS = 24 * 60 * 60 * 1000;

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
   * Checks the organization's balance after a posting. The caller holds the
   * organization's funds row lock (the ledger took it); that lock is what
   * serializes checks, so two transactions never both see the state before a
   * crossing. `threshold` is `billing.balance.low_warning_threshold` at the
   * organization. Returns the events written, each the organization balance's
   * next version.
   */
  async checkIn(tx: Tx, organizationId: string, threshold: bigint, now: Date): Promise<EventEnvelope[]> {
    const funds = await this.store.lockBalance(tx, organizationId);
    if (funds === undefined) {
      throw new AppError('BILLING_ORGANIZATION_UNKNOWN', 'Billing has no accounts for this organization yet', { details: { organizationId } });
    }
    const state = await this.store.state(tx, organizationId);
    const { next, announcements } = decideBalanceAlerts(state, funds.balance, threshold, now);
    // Most checks find nothing new: they write nothing, not even the row.
    if (unchanged(state, next)) return [];
    await this.store.save(tx, organizationId, next);
    const written: EventEnvelope[] = [];
    for (const [index, announcement] of announcements.entries()) {
      const definition = announcement.event === 'low_warning' ? balanceLowWarningV1 : balanceDepletedV1;
      written.push(
        await writeOutboxEvent(
          tx,
          {
            type: definition.type,
            version: definition.version,
            payload: {
              organizationId,
              currency: funds.currency,
              balance: formatAmount(funds.balance),
              threshold: formatAmount(threshold),
              reason: announcement.reason,
              announcedAt: now.toISOString(),
            },
            aggregateId: organizationId,
            aggregateVersion: state.version + index + 1,
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
