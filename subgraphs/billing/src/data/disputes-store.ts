import type { Queryable } from '@aifactory/events';
import { bigintOf } from '../domain/money.js';
import type { PaymentSessionStatus } from './payment-sessions-store.js';
import type { Tx } from './transactions.js';

export type DisputeStatus = 'held' | 'won' | 'lost';

/** A dispute (chargeback) of a payment (`payment_disputes`). */
export interface DisputeRecord {
  /** Stripe's dispute id. */
  id: string;
  organizationId: string;
  paymentSessionId: string;
  stripeChargeId: string | null;
  amount: bigint;
  currency: string;
  status: DisputeStatus;
  reason: string | null;
  holdPostingId: string;
  closePostingId: string | null;
  openedAt: Date;
  closedAt: Date | null;
  updatedAt: Date;
}

/** A disputed payment: the session whose Stripe payment intent the dispute names (checkout owns the table). */
export interface DisputedPayment {
  id: string;
  organizationId: string;
  /** The session's state: only a credited payment's money is in the customer balance. */
  status: PaymentSessionStatus;
}

/** A dispute as it is held: the record less what its close and the database set. */
export type NewDispute = Pick<DisputeRecord, 'id' | 'organizationId' | 'paymentSessionId' | 'stripeChargeId' | 'amount' | 'currency' | 'reason' | 'holdPostingId'>;

interface DisputeRow {
  id: string;
  organization_id: string;
  payment_session_id: string;
  stripe_charge_id: string | null;
  amount: string;
  currency: string;
  status: DisputeStatus;
  reason: string | null;
  hold_posting_id: string;
  close_posting_id: string | null;
  opened_at: Date;
  closed_at: Date | null;
  updated_at: Date;
}

const COLUMNS = `d.id, d.organization_id, d.payment_session_id, d.stripe_charge_id, d.amount, d.currency, d.status, d.reason,
  d.hold_posting_id, d.close_posting_id, d.opened_at, d.closed_at, d.updated_at`;

function recordOf(row: DisputeRow): DisputeRecord {
  return {
    id: row.id,
    organizationId: row.organization_id,
    paymentSessionId: row.payment_session_id,
    stripeChargeId: row.stripe_charge_id,
    amount: bigintOf(row.amount),
    currency: row.currency.trim(),
    status: row.status,
    reason: row.reason,
    holdPostingId: row.hold_posting_id,
    closePostingId: row.close_posting_id,
    openedAt: row.opened_at,
    closedAt: row.closed_at,
    updatedAt: row.updated_at,
  };
}

/** The SQL of payment disputes. */
export class DisputeStore {
  async paymentByIntent(db: Queryable, paymentIntentId: string): Promise<DisputedPayment | undefined> {
    const { rows } = await db.query<{ id: string; organization_id: string; status: PaymentSessionStatus }>(
      'SELECT id, organization_id, status FROM payment_sessions WHERE stripe_payment_intent_id = $1 ORDER BY created_at LIMIT 1',
      [paymentIntentId],
    );
    return rows[0] && { id: rows[0].id, organizationId: rows[0].organization_id, status: rows[0].status };
  }

  async byId(tx: Tx, id: string): Promise<DisputeRecord | undefined> {
    const { rows } = await tx.query<DisputeRow>(`SELECT ${COLUMNS} FROM payment_disputes d WHERE d.id = $1 FOR UPDATE`, [id]);
    return rows[0] && recordOf(rows[0]);
  }

  async insert(tx: Tx, dispute: NewDispute): Promise<DisputeRecord> {
    const { rows } = await tx.query<DisputeRow>(
      `INSERT INTO payment_disputes AS d (id, organization_id, payment_session_id, stripe_charge_id, amount, currency, reason, hold_posting_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       RETURNING ${COLUMNS}`,
      [
        dispute.id,
        dispute.organizationId,
        dispute.paymentSessionId,
        dispute.stripeChargeId,
        dispute.amount.toString(),
        dispute.currency,
        dispute.reason,
        dispute.holdPostingId,
      ],
    );
    return recordOf(rows[0]!);
  }

  async close(tx: Tx, id: string, status: Exclude<DisputeStatus, 'held'>, closePostingId: string): Promise<DisputeRecord> {
    const { rows } = await tx.query<DisputeRow>(
      `UPDATE payment_disputes AS d
       SET status = $2::"DisputeStatus", close_posting_id = $3, closed_at = CURRENT_TIMESTAMP, updated_at = CURRENT_TIMESTAMP
       WHERE d.id = $1
       RETURNING ${COLUMNS}`,
      [id, status, closePostingId],
    );
    return recordOf(rows[0]!);
  }

  /**
   * The organization's disputes in the order billing held them: by the
   * ledger sequence of their hold posting, after `afterSeq`.
   */
  async page(db: Queryable, organizationId: string, afterSeq: bigint | null, limit: number): Promise<(DisputeRecord & { holdSeq: bigint })[]> {
    const { rows } = await db.query<DisputeRow & { hold_seq: string }>(
      `SELECT ${COLUMNS}, p.seq AS hold_seq
       FROM payment_disputes d JOIN postings p ON p.id = d.hold_posting_id
       WHERE d.organization_id = $1 AND ($2::int8 IS NULL OR p.seq > $2::int8)
       ORDER BY p.seq
       LIMIT $3`,
      [organizationId, afterSeq === null ? null : afterSeq.toString(), limit],
    );
    return rows.map((row) => ({ ...recordOf(row), holdSeq: bigintOf(row.hold_seq) }));
  }
}
