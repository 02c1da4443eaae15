import type { Actor } from '@aifactory/contracts';
import type { Queryable } from '@aifactory/events';
import { bigintOf } from '../domain/money.js';
import type { PaymentSessionStatus } from './payment-sessions-store.js';
import type { Tx } from './transactions.js';

export type RefundStatus = 'requested' | 'submitted' | 'refunded' | 'posted' | 'failed';
/** Who started a refund: a platform admin here, or someone at Stripe (first seen in charge.refunded). */
export type RefundOrigin = 'platform' | 'stripe';

/** A refund request (`refund_requests`). */
export interface RefundRequestRecord {
  id: string;
  organizationId: string;
  paymentSessionId: string;
  amount: bigint;
  currency: string;
  status: RefundStatus;
  origin: RefundOrigin;
  idempotencyKey: string | null;
  stripeRefundId: string | null;
  reason: string | null;
  requestedBy: Actor | null;
  correlationId: string;
  postingId: string | null;
  failureReason: string | null;
  createdAt: Date;
  updatedAt: Date;
  submittedAt: Date | null;
  refundedAt: Date | null;
  postedAt: Date | null;
}

/**
 * A payment session as a refund sees it. Checkout owns `payment_sessions`;
 * refunds only read it.
 */
export interface RefundablePayment {
  id: string;
  organizationId: string;
  currency: string;
  status: PaymentSessionStatus;
  stripePaymentIntentId: string | null;
  creditedAt: Date | null;
  /** What its credit posted (the session's amount, or what Stripe received when finance accepted that). */
  creditedAmount: bigint;
}

export interface NewRefundRequest {
  id: string;
  organizationId: string;
  paymentSessionId: string;
  amount: bigint;
  currency: string;
  idempotencyKey: string;
  reason: string;
  requestedBy: Actor;
  correlationId: string;
}

/** A refund first seen at Stripe, recorded as it is posted. */
export interface StripeRefundRecord {
  id: string;
  organizationId: string;
  paymentSessionId: string;
  amount: bigint;
  currency: string;
  stripeRefundId: string;
  correlationId: string;
}

interface RefundRow {
  id: string;
  organization_id: string;
  payment_session_id: string;
  amount: string;
  currency: string;
  status: RefundStatus;
  origin: RefundOrigin;
  idempotency_key: string | null;
  stripe_refund_id: string | null;
  reason: string | null;
  requested_by: Actor | null;
  correlation_id: string;
  posting_id: string | null;
  failure_reason: string | null;
  created_at: Date;
  updated_at: Date;
  submitted_at: Date | null;
  refunded_at: Date | null;
  posted_at: Date | null;
}

const COLUMNS = `id, organization_id, payment_session_id, amount, currency, status, origin, idempotency_key, stripe_refund_id, reason,
  requested_by, correlation_id, posting_id, failure_reason, created_at, updated_at, submitted_at, refunded_at, posted_at`;

function recordOf(row: RefundRow): RefundRequestRecord {
  return {
    id: row.id,
    organizationId: row.organization_id,
    paymentSessionId: row.payment_session_id,
    amount: bigintOf(row.amount),
    currency: row.currency.trim(),
    status: row.status,
    origin: row.origin,
    idempotencyKey: row.idempotency_key,
    stripeRefundId: row.stripe_refund_id,
    reason: row.reason,
    requestedBy: row.requested_by,
    correlationId: row.correlation_id,
    postingId: row.posting_id,
    failureReason: row.failure_reason,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    submittedAt: row.submitted_at,
    refundedAt: row.refunded_at,
    postedAt: row.posted_at,
  };
}

/** The SQL of refund requests, and the reads of payment sessions refunds need. */
export class RefundStore {
  async payment(db: Queryable, paymentSessionId: string): Promise<RefundablePayment | undefined> {
    const { rows } = await db.query<PaymentRow>(`${PAYMENT_SELECT} WHERE ps.id = $1`, [paymentSessionId]);
    return rows[0] && paymentOf(rows[0]);
  }

  async paymentByIntent(db: Queryable, paymentIntentId: string): Promise<RefundablePayment | undefined> {
    const { rows } = await db.query<PaymentRow>(`${PAYMENT_SELECT} WHERE ps.stripe_payment_intent_id = $1 ORDER BY ps.created_at LIMIT 1`, [
      paymentIntentId,
    ]);
    return rows[0] && paymentOf(rows[0]);
  }

  async byId(tx: Tx, id: string): Promise<RefundRequestRecord | undefined> {
    const { rows } = await tx.query<RefundRow>(`SELECT ${COLUMNS} FROM refund_requests WHERE id = $1 FOR UPDATE`, [id]);
    return rows[0] && recordOf(rows[0]);
  }

  async byKey(tx: Tx, paymentSessionId: string, idempotencyKey: string): Promise<RefundRequestRecord | undefined> {
    const { rows } = await tx.query<RefundRow>(`SELECT ${COLUMNS} FROM refund_requests WHERE payment_session_id = $1 AND idempotency_key = $2`, [
      paymentSessionId,
      idempotencyKey,
    ]);
    return rows[0] && recordOf(rows[0]);
  }

  async byStripeRefundId(tx: Tx, stripeRefundId: string): Promise<RefundRequestRecord | undefined> {
    const { rows } = await tx.query<RefundRow>(`SELECT ${COLUMNS} FROM refund_requests WHERE stripe_refund_id = $1 FOR UPDATE`, [stripeRefundId]);
    return rows[0] && recordOf(rows[0]);
  }

  /** What the session's refunds take or may still take: every one but those Stripe refused. */
  async refundedOfPayment(tx: Tx, paymentSessionId: string): Promise<bigint> {
    const { rows } = await tx.query<{ amount: string | null }>(
      "SELECT sum(amount)::int8 AS amount FROM refund_requests WHERE payment_session_id = $1 AND status <> 'failed'",
      [paymentSessionId],
    );
    return bigintOf(rows[0]?.amount);
  }

  /** Refunds of the organization on their way out that the paid balance does not show yet (not yet posted). */
  async inFlightOfOrganization(tx: Tx, organizationId: string): Promise<bigint> {
    const { rows } = await tx.query<{ amount: string | null }>(
      "SELECT sum(amount)::int8 AS amount FROM refund_requests WHERE organization_id = $1 AND status IN ('requested', 'submitted', 'refunded')",
      [organizationId],
    );
    return bigintOf(rows[0]?.amount);
  }

  async insert(tx: Tx, request: NewRefundRequest): Promise<RefundRequestRecord> {
    const { rows } = await tx.query<RefundRow>(
      `INSERT INTO refund_requests (id, organization_id, payment_session_id, amount, currency, status, origin, idempotency_key, reason, requested_by, correlation_id)
       VALUES ($1, $2, $3, $4, $5, 'requested', 'platform', $6, $7, $8, $9)
       RETURNING ${COLUMNS}`,
      [
        request.id,
        request.organizationId,
        request.paymentSessionId,
        request.amount.toString(),
        request.currency,
        request.idempotencyKey,
        request.reason,
        JSON.stringify(request.requestedBy),
        request.correlationId,
      ],
    );
    return recordOf(rows[0]!);
  }

  /** A refund Stripe did not get from us, recorded `refunded`: posting it follows in the same transaction. */
  async insertFromStripe(tx: Tx, refund: StripeRefundRecord): Promise<RefundRequestRecord> {
    const { rows } = await tx.query<RefundRow>(
      `INSERT INTO refund_requests (id, organization_id, payment_session_id, amount, currency, status, origin, stripe_refund_id, correlation_id,
         submitted_at, refunded_at)
       VALUES ($1, $2, $3, $4, $5, 'refunded', 'stripe', $6, $7, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)
       RETURNING ${COLUMNS}`,
      [refund.id, refund.organizationId, refund.paymentSessionId, refund.amount.toString(), refund.currency, refund.stripeRefundId, refund.correlationId],
    );
    return recordOf(rows[0]!);
  }

  /**
   * Stripe's answer to our refund: `submitted` with its id, or straight to
   * `refunded` when Stripe says it succeeded. A request that moved on
   * meanwhile (its webhook posted it) is left as it is; undefined then.
   */
  async recordSubmitted(tx: Tx, id: string, stripeRefundId: string, succeeded: boolean): Promise<RefundRequestRecord | undefined> {
    const { rows } = await tx.query<RefundRow>(
      `UPDATE refund_requests
       SET stripe_refund_id = $2,
           status = CASE WHEN $3 THEN 'refunded' ELSE 'submitted' END::"RefundStatus",
           submitted_at = COALESCE(submitted_at, CURRENT_TIMESTAMP),
           refunded_at = CASE WHEN $3 THEN CURRENT_TIMESTAMP ELSE NULL END,
           updated_at = CURRENT_TIMESTAMP
       WHERE id = $1 AND status IN ('requested', 'submitted')
       RETURNING ${COLUMNS}`,
      [id, stripeRefundId, succeeded],
    );
    return rows[0] && recordOf(rows[0]);
  }

  /** Stripe refused the refund or it failed there; undefined when the request had moved on. */
  async recordFailed(tx: Tx, id: string, stripeRefundId: string | null, reason: string): Promise<RefundRequestRecord | undefined> {
    const { rows } = await tx.query<RefundRow>(
      `UPDATE refund_requests
       SET status = 'failed', failure_reason = $3, stripe_refund_id = COALESCE($2, stripe_refund_id), updated_at = CURRENT_TIMESTAMP
       WHERE id = $1 AND status IN ('requested', 'submitted')
       RETURNING ${COLUMNS}`,
      [id, stripeRefundId, reason],
    );
    return rows[0] && recordOf(rows[0]);
  }

  /** The refund's posting is written: the request ends `posted`, whatever step it was at. */
  async recordPosted(tx: Tx, id: string, stripeRefundId: string, postingId: string): Promise<RefundRequestRecord> {
    const { rows } = await tx.query<RefundRow>(
      `UPDATE refund_requests
       SET status = 'posted', stripe_refund_id = $2, posting_id = $3, failure_reason = NULL,
           submitted_at = COALESCE(submitted_at, CURRENT_TIMESTAMP), refunded_at = COALESCE(refunded_at, CURRENT_TIMESTAMP),
           posted_at = CURRENT_TIMESTAMP, updated_at = CURRENT_TIMESTAMP
       WHERE id = $1
       RETURNING ${COLUMNS}`,
      [id, stripeRefundId, postingId],
    );
    return recordOf(rows[0]!);
  }

  /** The organization's refunds oldest first, after the one named by `afterId`. */
  async page(db: Queryable, organizationId: string, afterId: string | null, limit: number): Promise<RefundRequestRecord[]> {
    const { rows } = await db.query<RefundRow>(
      `SELECT ${COLUMNS} FROM refund_requests
       WHERE organization_id = $1
         AND ($2::uuid IS NULL OR (created_at, id) > (SELECT created_at, id FROM refund_requests WHERE id = $2::uuid))
       ORDER BY created_at, id
       LIMIT $3`,
      [organizationId, afterId, limit],
    );
    return rows.map(recordOf);
  }
}

interface PaymentRow {
  id: string;
  organization_id: string;
  currency: string;
  status: PaymentSessionStatus;
  stripe_payment_intent_id: string | null;
  credited_at: Date | null;
  credited_amount: string;
}

const PAYMENT_SELECT = `SELECT ps.id, ps.organization_id, ps.currency, ps.status, ps.stripe_payment_intent_id, ps.credited_at,
  COALESCE((SELECT sum(t.amount) FROM transfers t WHERE t.posting_id = ps.posting_id), ps.amount)::int8 AS credited_amount
  FROM payment_sessions ps`;

function paymentOf(row: PaymentRow): RefundablePayment {
  return {
    id: row.id,
    organizationId: row.organization_id,
    currency: row.currency.trim(),
    status: row.status,
    stripePaymentIntentId: row.stripe_payment_intent_id,
    creditedAt: row.credited_at,
    creditedAmount: bigintOf(row.credited_amount),
  };
}
