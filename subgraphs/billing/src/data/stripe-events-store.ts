import type { Db, Tx } from './transactions.js';

export const STRIPE_EVENT_STATUSES = ['pending', 'processed', 'dead'] as const;
export type StripeEventStatus = (typeof STRIPE_EVENT_STATUSES)[number];

/** A verified Stripe event as the webhook stores it. */
export interface NewStripeEvent {
  id: string;
  type: string;
  livemode: boolean;
  stripeCreatedAt: Date;
  /** The whole event JSON whose signature verified. */
  payload: Record<string, unknown>;
  receivedAt: Date;
  correlationId: string;
}

/** A stored event as finance sees it (stripeWebhookEvents): everything but its payload. */
export interface StripeEventView {
  id: string;
  type: string;
  livemode: boolean;
  stripeCreatedAt: Date;
  receivedAt: Date;
  status: StripeEventStatus;
  /** Claims so far: each attempt to process it counts, including one whose worker died. */
  attempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
  processedAt: Date | null;
  flagged: boolean;
  flagReason: string | null;
  organizationId: string | null;
  paymentSessionId: string | null;
  correlationId: string;
}

/** A claimed event with its payload, for its handler. */
export interface ClaimedStripeEvent extends StripeEventView {
  payload: Record<string, unknown>;
}

/** What processing an event ended in. */
export type StripeEventSettlement =
  | { status: 'processed'; processedAt: Date; flagReason: string | null; organizationId?: string | null; paymentSessionId?: string | null }
  | { status: 'pending'; lastError: string; nextAttemptAt: Date }
  | { status: 'dead'; lastError: string };

export interface StripeEventListQuery {
  statuses: readonly StripeEventStatus[] | null;
  flagged: boolean | null;
  after: { receivedAt: Date; id: string } | null;
  limit: number;
}

/** Pending events, their oldest one's receipt, and dead letters, counted in one read. */
export interface StripeEventBacklog {
  pending: number;
  oldestPendingReceivedAt: Date | null;
  dead: number;
}

const VIEW_COLUMNS = `e.id, e.type, e.livemode, e.stripe_created_at, e.received_at, e.status, e.attempts, e.next_attempt_at, e.last_error,
  e.processed_at, e.flagged, e.flag_reason, e.organization_id, e.payment_session_id, e.correlation_id`;

interface StripeEventRow {
  id: string;
  type: string;
  livemode: boolean;
  stripe_created_at: Date;
  received_at: Date;
  status: StripeEventStatus;
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  processed_at: Date | null;
  flagged: boolean;
  flag_reason: string | null;
  organization_id: string | null;
  payment_session_id: string | null;
  correlation_id: string;
}

function viewOf(row: StripeEventRow): StripeEventView {
  return {
    id: row.id,
    type: row.type,
    livemode: row.livemode,
    stripeCreatedAt: row.stripe_created_at,
    receivedAt: row.received_at,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    processedAt: row.processed_at,
    flagged: row.flagged,
    flagReason: row.flag_reason,
    organizationId: row.organization_id,
    paymentSessionId: row.payment_session_id,
    correlationId: row.correlation_id,
  };
}

/** stripe_events' SQL: the webhook's insert, the worker's claims and settlements, finance's reads. */
export class StripeEventsStore {
  /** Stores the event once per Stripe event id; false when it was stored before (a redelivery). */
  async insert(db: Db, event: NewStripeEvent): Promise<boolean> {
    const { rowCount } = await db.query({
      name: 'stripe_event_insert',
      text: `INSERT INTO stripe_events (id, type, livemode, stripe_created_at, payload, received_at, next_attempt_at, correlation_id)
             VALUES ($1, $2, $3, $4, $5::jsonb, $6, $6, $7)
             ON CONFLICT (id) DO NOTHING`,
      values: [event.id, event.type, event.livemode, event.stripeCreatedAt, JSON.stringify(event.payload), event.receivedAt, event.correlationId],
    });
    return rowCount === 1;
  }

  /**
   * Claims up to `limit` due pending events, oldest received first, skipping
   * those another worker holds: each claim counts as an attempt and moves
   * its next attempt to `leaseUntil`, so an event whose worker dies
   * mid-handler is taken up again once the lease runs out.
   */
  async claimDue(tx: Tx, now: Date, leaseUntil: Date, limit: number): Promise<ClaimedStripeEvent[]> {
    const { rows } = await tx.query<StripeEventRow & { payload: Record<string, unknown> }>({
      name: 'stripe_event_claim',
      text: `WITH due AS (
               SELECT id FROM stripe_events
               WHERE status = 'pending' AND next_attempt_at <= $1
               ORDER BY received_at, id
               LIMIT $3
               FOR UPDATE SKIP LOCKED
             )
             UPDATE stripe_events e SET attempts = e.attempts + 1, next_attempt_at = $2
             FROM due WHERE e.id = due.id
             RETURNING ${VIEW_COLUMNS}, e.payload`,
      values: [now, leaseUntil, limit],
    });
    return rows
      .map((row) => ({ ...viewOf(row), payload: row.payload }))
      .sort((a, b) => a.receivedAt.getTime() - b.receivedAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * Records how the claim numbered `attempt` ended. Only while the event is
   * still that claim's: after a lease ran out and another worker claimed it
   * again, the later claim decides, and this one changes nothing (false).
   */
  async settle(db: Db, id: string, attempt: number, settlement: StripeEventSettlement): Promise<boolean> {
    switch (settlement.status) {
      case 'processed': {
        const { rowCount } = await db.query({
          name: 'stripe_event_processed',
          text: `UPDATE stripe_events SET status = 'processed', processed_at = $3, last_error = NULL,
                   flagged = $4::text IS NOT NULL, flag_reason = $4,
                   organization_id = CASE WHEN $5 THEN $6::uuid ELSE organization_id END,
                   payment_session_id = CASE WHEN $7 THEN $8::uuid ELSE payment_session_id END
                 WHERE id = $1 AND attempts = $2 AND status = 'pending'`,
          values: [
            id,
            attempt,
            settlement.processedAt,
            settlement.flagReason,
            settlement.organizationId !== undefined,
            settlement.organizationId ?? null,
            settlement.paymentSessionId !== undefined,
            settlement.paymentSessionId ?? null,
          ],
        });
        return rowCount === 1;
      }
      case 'pending': {
        const { rowCount } = await db.query({
          name: 'stripe_event_retry_later',
          text: `UPDATE stripe_events SET last_error = $3, next_attempt_at = $4 WHERE id = $1 AND attempts = $2 AND status = 'pending'`,
          values: [id, attempt, settlement.lastError, settlement.nextAttemptAt],
        });
        return rowCount === 1;
      }
      case 'dead': {
        const { rowCount } = await db.query({
          name: 'stripe_event_dead',
          text: `UPDATE stripe_events SET status = 'dead', last_error = $3 WHERE id = $1 AND attempts = $2 AND status = 'pending'`,
          values: [id, attempt, settlement.lastError],
        });
        return rowCount === 1;
      }
      default: {
        const unknown: never = settlement;
        throw new Error(`unknown settlement ${JSON.stringify(unknown)}`);
      }
    }
  }

  async lock(tx: Tx, id: string): Promise<StripeEventView | undefined> {
    const { rows } = await tx.query<StripeEventRow>(`SELECT ${VIEW_COLUMNS} FROM stripe_events e WHERE e.id = $1 FOR UPDATE`, [id]);
    return rows[0] === undefined ? undefined : viewOf(rows[0]);
  }

  /** A dead event back to pending, due at `now`, with its attempts counted afresh; its last error stays until it is processed. */
  async revive(tx: Tx, id: string, now: Date): Promise<StripeEventView> {
    const { rows } = await tx.query<StripeEventRow>(
      `UPDATE stripe_events e SET status = 'pending', attempts = 0, next_attempt_at = $2 WHERE e.id = $1 AND e.status = 'dead' RETURNING ${VIEW_COLUMNS}`,
      [id, now],
    );
    if (rows[0] === undefined) throw new Error(`stripe event ${id} was not dead when revived`);
    return viewOf(rows[0]);
  }

  /** Oldest received first, (received_at, id) as the keyset. */
  async list(db: Db, query: StripeEventListQuery): Promise<StripeEventView[]> {
    const { rows } = await db.query<StripeEventRow>(
      `SELECT ${VIEW_COLUMNS} FROM stripe_events e
       WHERE ($1::"StripeEventStatus"[] IS NULL OR e.status = ANY($1::"StripeEventStatus"[]))
         AND ($2::boolean IS NULL OR e.flagged = $2)
         AND ($3::timestamptz IS NULL OR (e.received_at, e.id) > ($3, $4::text))
       ORDER BY e.received_at, e.id
       LIMIT $5`,
      [query.statuses, query.flagged, query.after?.receivedAt ?? null, query.after?.id ?? null, query.limit],
    );
    return rows.map(viewOf);
  }

  async backlog(db: Db): Promise<StripeEventBacklog> {
    const { rows } = await db.query<{ pending: number; oldest: Date | null; dead: number }>(
      `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
              min(received_at) FILTER (WHERE status = 'pending') AS oldest,
              count(*) FILTER (WHERE status = 'dead')::int AS dead
       FROM stripe_events WHERE status IN ('pending', 'dead')`,
    );
    const row = rows[0]!;
    return { pending: row.pending, oldestPendingReceivedAt: row.oldest, dead: row.dead };
  }
}
