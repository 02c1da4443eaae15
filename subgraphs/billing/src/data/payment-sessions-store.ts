import type pg from 'pg';
import type { Actor } from '@aifactory/contracts';
import type { Queryable } from '@aifactory/events';
import { bigintOf } from '../domain/money.js';
import type { Tx } from './transactions.js';

export const PAYMENT_SESSION_STATUSES = ['initiated', 'checkout_completed', 'credited', 'failed_reconcile', 'payment_failed', 'expired'] as const;
export type PaymentSessionStatus = (typeof PAYMENT_SESSION_STATUSES)[number];

/** A Stripe Checkout top-up as billing recorded it (payment_sessions). */
export interface PaymentSessionRecord {
  id: string;
  organizationId: string;
  amount: bigint;
  currency: string;
  status: PaymentSessionStatus;
  idempotencyKey: string;
  stripeSessionId: string;
  stripeCustomerId: string;
  stripePaymentIntentId: string | null;
  url: string | null;
  /** Stripe's payment_status, amount_total and currency as last reported. */
  paymentStatus: string | null;
  amountReceived: bigint | null;
  currencyReceived: string | null;
  postingId: string | null;
  failureReason: string | null;
  createdBy: Actor;
  correlationId: string;
  createdAt: Date;
  updatedAt: Date;
  expiresAt: Date | null;
  completedAt: Date | null;
  creditedAt: Date | null;
}

/** An `initiated` session as checkout records it: the record less what settlement and the database set. */
export type NewPaymentSession = Pick<
  PaymentSessionRecord,
  'id' | 'organizationId' | 'amount' | 'currency' | 'idempotencyKey' | 'stripeSessionId' | 'stripeCustomerId' | 'url' | 'expiresAt' | 'createdBy' | 'correlationId'
>;

/** What Stripe reported about the session, kept with a transition; a field left out keeps its stored value. */
export interface ReportedPayment {
  paymentStatus?: string | null;
  amountReceived?: bigint | null;
  currencyReceived?: string | null;
  stripePaymentIntentId?: string | null;
}

export interface SessionTransition extends ReportedPayment {
  to: PaymentSessionStatus;
  /** The states the session may be in for the transition to apply; in any other it is left as it is. */
  from: readonly PaymentSessionStatus[];
  postingId?: string;
  failureReason?: string | null;
}

export interface SessionListQuery {
  /** Null: every organization's. */
  organizationId: string | null;
  statuses: readonly PaymentSessionStatus[] | null;
  /** Only sessions last changed at least this long ago; null: any. */
  unchangedForSeconds: number | null;
  /** The id of the last session of the previous page. */
  afterId: string | null;
  limit: number;
}

const COLUMNS = `s.id, s.organization_id, s.amount, s.currency, s.status, s.idempotency_key, s.stripe_session_id, s.stripe_customer_id,
  s.stripe_payment_intent_id, s.url, s.payment_status, s.amount_received, s.currency_received, s.posting_id, s.failure_reason,
  s.created_by, s.correlation_id, s.created_at, s.updated_at, s.expires_at, s.completed_at, s.credited_at`;

interface PaymentSessionRow {
  id: string;
  organization_id: string;
  amount: string;
  currency: string;
  status: PaymentSessionStatus;
  idempotency_key: string;
  stripe_session_id: string;
  stripe_customer_id: string;
  stripe_payment_intent_id: string | null;
  url: string | null;
  payment_status: string | null;
  amount_received: string | null;
  currency_received: string | null;
  posting_id: string | null;
  failure_reason: string | null;
  created_by: Actor;
  correlation_id: string;
  created_at: Date;
  updated_at: Date;
  expires_at: Date | null;
  completed_at: Date | null;
  credited_at: Date | null;
}

function sessionOf(row: PaymentSessionRow): PaymentSessionRecord {
  return {
    id: row.id,
    organizationId: row.organization_id,
    amount: bigintOf(row.amount),
    currency: row.currency.trim(),
    status: row.status,
    idempotencyKey: row.idempotency_key,
    stripeSessionId: row.stripe_session_id,
    stripeCustomerId: row.stripe_customer_id,
    stripePaymentIntentId: row.stripe_payment_intent_id,
    url: row.url,
    paymentStatus: row.payment_status,
    amountReceived: row.amount_received === null ? null : bigintOf(row.amount_received),
    currencyReceived: row.currency_received === null ? null : row.currency_received.trim(),
    postingId: row.posting_id,
    failureReason: row.failure_reason,
    createdBy: row.created_by,
    correlationId: row.correlation_id,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
    completedAt: row.completed_at,
    creditedAt: row.credited_at,
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** payment_sessions and payment_customers, in raw SQL; every method runs on the connection given (a transaction's) or the pool. */
export class PaymentSessionStore {
  constructor(private readonly pool: pg.Pool) {}

  async customerOf(organizationId: string, db: Queryable = this.pool): Promise<string | undefined> {
    const { rows } = await db.query<{ stripe_customer_id: string }>('SELECT stripe_customer_id FROM payment_customers WHERE organization_id = $1', [
      organizationId,
    ]);
    return rows[0]?.stripe_customer_id;
  }

  /** Records the organization's Stripe customer; the one recorded first stays, and is returned. */
  async saveCustomer(organizationId: string, stripeCustomerId: string, db: Queryable = this.pool): Promise<string> {
    await db.query('INSERT INTO payment_customers (organization_id, stripe_customer_id) VALUES ($1, $2) ON CONFLICT (organization_id) DO NOTHING', [
      organizationId,
      stripeCustomerId,
    ]);
    const stored = await this.customerOf(organizationId, db);
    if (stored === undefined) throw new Error(`payment customer of ${organizationId} vanished after its insert`);
    return stored;
  }

  /** Inserts an `initiated` session unless one exists for its (organization, idempotency key); returns the one stored. */
  async insertInitiated(session: NewPaymentSession, db: Queryable = this.pool): Promise<PaymentSessionRecord> {
    await db.query(
      `INSERT INTO payment_sessions (id, organization_id, amount, currency, status, idempotency_key, stripe_session_id, stripe_customer_id,
         url, expires_at, created_by, correlation_id)
       VALUES ($1, $2, $3, $4, 'initiated', $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (organization_id, idempotency_key) DO NOTHING`,
      [
        session.id,
        session.organizationId,
        session.amount.toString(),
        session.currency,
        session.idempotencyKey,
        session.stripeSessionId,
        session.stripeCustomerId,
        session.url,
        session.expiresAt,
        JSON.stringify(session.createdBy),
        session.correlationId,
      ],
    );
    const stored = await this.findByKey(session.organizationId, session.idempotencyKey, db);
    if (!stored) throw new Error(`payment session ${session.id} vanished after its insert`);
    return stored;
  }

  async findByKey(organizationId: string, idempotencyKey: string, db: Queryable = this.pool): Promise<PaymentSessionRecord | undefined> {
    const { rows } = await db.query<PaymentSessionRow>(`SELECT ${COLUMNS} FROM payment_sessions s WHERE s.organization_id = $1 AND s.idempotency_key = $2`, [
      organizationId,
      idempotencyKey,
    ]);
    return rows[0] && sessionOf(rows[0]);
  }

  async find(id: string, db: Queryable = this.pool): Promise<PaymentSessionRecord | undefined> {
    if (!UUID.test(id)) return undefined;
    const { rows } = await db.query<PaymentSessionRow>(`SELECT ${COLUMNS} FROM payment_sessions s WHERE s.id = $1`, [id]);
    return rows[0] && sessionOf(rows[0]);
  }

  async findByStripeSessionId(stripeSessionId: string, db: Queryable = this.pool): Promise<PaymentSessionRecord | undefined> {
    const { rows } = await db.query<PaymentSessionRow>(`SELECT ${COLUMNS} FROM payment_sessions s WHERE s.stripe_session_id = $1`, [stripeSessionId]);
    return rows[0] && sessionOf(rows[0]);
  }

  /**
   * Locks the session row until the transaction ends: every change of a
   * session's state is made under this lock. NO KEY UPDATE, since the id
   * never changes: refunds and disputes insert rows referencing the session
   * (a KEY SHARE lock) while they hold the organization's funds row, which a
   * credit under this lock takes next; FOR UPDATE would deadlock with them.
   */
  async lock(tx: Tx, id: string): Promise<PaymentSessionRecord | undefined> {
    if (!UUID.test(id)) return undefined;
    const { rows } = await tx.query<PaymentSessionRow>(`SELECT ${COLUMNS} FROM payment_sessions s WHERE s.id = $1 FOR NO KEY UPDATE`, [id]);
    return rows[0] && sessionOf(rows[0]);
  }

  /** Moves the session to `to` if it is in one of `from`; undefined when it was not (nothing changed). */
  async transition(tx: Tx, id: string, change: SessionTransition): Promise<PaymentSessionRecord | undefined> {
    const { rows } = await tx.query<PaymentSessionRow>(
      `UPDATE payment_sessions s
          SET status = $2::"PaymentSessionStatus",
              payment_status = CASE WHEN $4 THEN $5 ELSE s.payment_status END,
              amount_received = CASE WHEN $6 THEN $7::bigint ELSE s.amount_received END,
              currency_received = CASE WHEN $8 THEN $9 ELSE s.currency_received END,
              stripe_payment_intent_id = COALESCE($10, s.stripe_payment_intent_id),
              posting_id = COALESCE($11, s.posting_id),
              failure_reason = CASE WHEN $12 THEN $13 ELSE s.failure_reason END,
              completed_at = CASE WHEN $2::"PaymentSessionStatus" = 'checkout_completed' THEN now() ELSE s.completed_at END,
              credited_at = CASE WHEN $2::"PaymentSessionStatus" = 'credited' THEN now() ELSE s.credited_at END,
              updated_at = now()
        WHERE s.id = $1 AND s.status = ANY($3::"PaymentSessionStatus"[])
        RETURNING ${COLUMNS}`,
      [
        id,
        change.to,
        change.from,
        change.paymentStatus !== undefined,
        change.paymentStatus ?? null,
        change.amountReceived !== undefined,
        change.amountReceived?.toString() ?? null,
        change.currencyReceived !== undefined,
        change.currencyReceived ?? null,
        change.stripePaymentIntentId ?? null,
        change.postingId ?? null,
        change.failureReason !== undefined,
        change.failureReason ?? null,
      ],
    );
    return rows[0] && sessionOf(rows[0]);
  }

  /** Sessions oldest first (created_at, then id), `limit` of them after the session `afterId`. */
  async list(query: SessionListQuery, db: Queryable = this.pool): Promise<PaymentSessionRecord[]> {
    const { rows } = await db.query<PaymentSessionRow>(
      `SELECT ${COLUMNS} FROM payment_sessions s
        WHERE ($1::uuid IS NULL OR s.organization_id = $1)
          AND ($2::"PaymentSessionStatus"[] IS NULL OR s.status = ANY($2::"PaymentSessionStatus"[]))
          AND ($3::int IS NULL OR s.updated_at <= now() - make_interval(secs => $3::int))
          AND ($4::uuid IS NULL OR (s.created_at, s.id) > (SELECT a.created_at, a.id FROM payment_sessions a WHERE a.id = $4::uuid))
        ORDER BY s.created_at, s.id
        LIMIT $5`,
      [query.organizationId, query.statuses, query.unchangedForSeconds, query.afterId, query.limit],
    );
    return rows.map(sessionOf);
  }

  /** The organization's paid balance as the funds row holds it, read on the transaction that just changed it. */
  async paidBalance(tx: Tx, organizationId: string): Promise<bigint> {
    const { rows } = await tx.query<{ paid: string }>('SELECT paid FROM organization_funds WHERE organization_id = $1', [organizationId]);
    if (!rows[0]) throw new Error(`organization ${organizationId} has no funds row`);
    return bigintOf(rows[0].paid);
  }
}
