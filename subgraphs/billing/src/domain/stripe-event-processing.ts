import type pg from 'pg';
import { z } from 'zod';
import type { Access } from '@aifactory/authz';
import type { Clock } from '@aifactory/clock';
import { AppError, parseInput, toPublicError } from '@aifactory/errors';
import type { Principal } from '@aifactory/service-auth';
import { keysetConnection, pageSize, type Connection } from '@aifactory/subgraph-kit';
import {
  STRIPE_EVENT_STATUSES,
  type ClaimedStripeEvent,
  type StripeEventsStore,
  type StripeEventSettlement,
  type StripeEventView,
} from '../data/stripe-events-store.js';
import { inTransaction } from '../data/transactions.js';
import type { VerifiedStripeEvent } from '../stripe/webhook-signature.js';
import { recordAudit } from './audit.js';
import type { PaymentMetrics, StripeEventOutcomeLabel } from './payment-metrics.js';
import { BILLING_ADMIN } from './price-books.js';
import type { StoredStripeEvent, StripeEventHandlers, StripeEventOutcome } from './stripe-events.js';

/** Backoff never waits longer than this between two attempts. */
const MAX_BACKOFF_MS = 5 * 60_000;

const listFilter = z.object({
  status: z.array(z.enum(STRIPE_EVENT_STATUSES)).nullish(),
  flagged: z.boolean().nullish(),
});

export type StripeWebhookEventFilter = z.input<typeof listFilter>;

/** `['stripe_event', receivedAt, id]` as base64url JSON; a cursor of another list is refused. */
const cursor = z.tuple([z.literal('stripe_event'), z.iso.datetime(), z.string().min(1).max(255)]);

export interface StripeEventProcessingOptions {
  /** BILLING_WEBHOOK_MAX_ATTEMPTS: attempts before an event is dead-lettered. */
  maxAttempts: number;
  /** BILLING_WEBHOOK_RETRY_BASE_MS: the wait after the first failure, doubled after each further one (at most 5 min). */
  retryBaseMs: number;
  /** Audit events go to `<subjectPrefix>.platform.audit...`. */
  subjectPrefix: string;
  /**
   * How long a claim holds an event: a worker that died mid-handler leaves it
   * to another after this. Longer than a handler's Stripe calls can take.
   */
  leaseMs?: number;
}

/** Who retries a dead event: a platform admin. */
export interface RetryingCaller {
  principal: Principal;
  access: Access;
  correlationId: string;
}

/** How one claimed event's processing ended, for the worker's log. */
export interface ProcessedStripeEvent {
  id: string;
  type: string;
  outcome: StripeEventOutcomeLabel;
  /** The handler's failure (retried or dead). */
  error?: unknown;
}

/**
 * Stripe's webhooks, durable (issue 18, seed 002 degradation model): a
 * verified event is stored once per Stripe event id before Stripe is
 * answered, and processed later by the worker, in the order received, by the
 * handler of its type. Handlers open their own transactions (and may call
 * Stripe), so a claim is a short transaction of its own that commits before
 * any handler runs: no connection is held while a handler asks the pool for
 * one. A handler that throws is retried with exponential backoff and, after
 * the last attempt, the event is dead-lettered; finance sees it
 * (stripeWebhookEvents) and a platform admin sends it back
 * (retryStripeWebhookEvent, audited). Any number of billing instances may
 * process at once: claims skip what another holds.
 */
export class StripeEventProcessor {
  private readonly leaseMs: number;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly store: StripeEventsStore,
    private readonly handlers: StripeEventHandlers,
    private readonly options: StripeEventProcessingOptions,
    private readonly metrics: PaymentMetrics,
    private readonly clock: Clock,
  ) {
    this.leaseMs = options.leaseMs ?? 120_000;
  }

  /**
   * Stores an event whose signature verified; `duplicate` when Stripe
   * delivered it before, in which case nothing else happens. A fresh one
   * wakes this process's worker.
   */
  async receive(event: VerifiedStripeEvent, correlationId: string): Promise<{ duplicate: boolean }> {
    const stored = await this.store.insert(this.pool, {
      id: event.id,
      type: event.type,
      livemode: event.livemode ?? false,
      stripeCreatedAt: new Date(event.created * 1000),
      payload: event,
      receivedAt: this.clock.now(),
      correlationId,
    });
    if (stored) this.notify();
    return { duplicate: !stored };
  }

  /** Calls `listener` (the worker's nudge) whenever an event became due here; returns its removal. */
  onDue(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Processes up to `limit` events due when the round starts, oldest received
   * first, each claimed as its processing starts: a lease taken for a whole
   * batch would run out for the events waiting behind slow handlers, and
   * another instance would process them at the same time. An event retried
   * in this round is due after it starts, so it waits for a later round.
   */
  async processDue(limit: number): Promise<ProcessedStripeEvent[]> {
    const dueBy = this.clock.now();
    const results: ProcessedStripeEvent[] = [];
    while (results.length < limit) {
      const leaseUntil = new Date(this.clock.nowMs() + this.leaseMs);
      const [event] = await inTransaction(this.pool, (tx) => this.store.claimDue(tx, dueBy, leaseUntil, 1));
      if (!event) break;
      results.push(await this.process(event));
    }
    return results;
  }

  /** Sends a dead event back to be processed afresh (a platform admin, once the cause is fixed); audited as billing.payment.webhook_retry. */
  async retry(caller: RetryingCaller, id: string): Promise<StripeEventView> {
    caller.access.requireHolds(BILLING_ADMIN);
    const revived = await inTransaction(this.pool, async (tx) => {
      const event = await this.store.lock(tx, id);
      if (!event) throw new AppError('BILLING_WEBHOOK_EVENT_NOT_FOUND', 'Billing has no Stripe event by this id', { details: { id } });
      if (event.status !== 'dead') {
        throw new AppError('BILLING_WEBHOOK_EVENT_NOT_DEAD', `The Stripe event is ${event.status}: only a dead-lettered event is retried`, {
          details: { id, status: event.status },
        });
      }
      const pending = await this.store.revive(tx, id, this.clock.now());
      await recordAudit(
        tx,
        {
          action: 'billing.payment.webhook_retry',
          caller,
          scope: BILLING_ADMIN,
          resource:
            event.organizationId !== null && event.paymentSessionId !== null
              ? { organizationId: event.organizationId, type: 'payment_session', id: event.paymentSessionId }
              : null,
          details: { stripeEventId: id, type: event.type, attempts: event.attempts, lastError: event.lastError },
        },
        { subjectPrefix: this.options.subjectPrefix },
      );
      return pending;
    });
    this.notify();
    return revived;
  }

  /** Stored events, oldest received first, for finance (platform admins). */
  async list(
    access: Access,
    filter: StripeWebhookEventFilter | null | undefined,
    args: { first?: number | null; after?: string | null },
  ): Promise<Connection<StripeEventView>> {
    access.requireHolds(BILLING_ADMIN);
    const valid = parseInput(listFilter, filter ?? {});
    const first = pageSize(args.first);
    const after = args.after ? decodeCursor(args.after) : null;
    const rows = await this.store.list(this.pool, {
      statuses: valid.status ?? null,
      flagged: valid.flagged ?? null,
      after: after === null ? null : { receivedAt: new Date(after[1]), id: after[2] },
      limit: first + 1,
    });
    return keysetConnection(rows, first, (row) => encodeCursor(row));
  }

  private async process(event: ClaimedStripeEvent): Promise<ProcessedStripeEvent> {
    // A claim whose worker died is claimed again with its attempt counted: an event that keeps killing its worker is dead-lettered too.
    if (event.attempts > this.options.maxAttempts) {
      const error = new AppError('INTERNAL_ERROR', 'Processing stopped before it finished, attempt after attempt');
      return this.settle(event, { status: 'dead', lastError: errorText(error, event.correlationId) }, 'dead', error);
    }
    const handler = this.handlers[event.type];
    let outcome: StripeEventOutcome = {};
    try {
      if (handler) outcome = await handler(storedEventOf(event));
    } catch (error) {
      const lastError = errorText(error, event.correlationId);
      if (event.attempts >= this.options.maxAttempts) return this.settle(event, { status: 'dead', lastError }, 'dead', error);
      const nextAttemptAt = new Date(this.clock.nowMs() + backoffMs(this.options.retryBaseMs, event.attempts));
      return this.settle(event, { status: 'pending', lastError, nextAttemptAt }, 'retried', error);
    }
    const processedAt = this.clock.now();
    return this.settle(
      event,
      {
        status: 'processed',
        processedAt,
        flagReason: outcome.flag ?? null,
        ...(outcome.organizationId === undefined ? {} : { organizationId: outcome.organizationId }),
        ...(outcome.paymentSessionId === undefined ? {} : { paymentSessionId: outcome.paymentSessionId }),
      },
      handler ? (outcome.flag ? 'flagged' : 'processed') : 'unhandled',
    );
  }

  private async settle(
    event: ClaimedStripeEvent,
    settlement: StripeEventSettlement,
    outcome: StripeEventOutcomeLabel,
    error?: unknown,
  ): Promise<ProcessedStripeEvent> {
    // False: the lease ran out and a later claim owns the event; that claim reports it.
    if (await this.store.settle(this.pool, event.id, event.attempts, settlement)) {
      const lag = settlement.status === 'processed' ? (settlement.processedAt.getTime() - event.receivedAt.getTime()) / 1000 : null;
      this.metrics.observeEvent(event.type, outcome, lag);
    }
    return { id: event.id, type: event.type, outcome, ...(error === undefined ? {} : { error }) };
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}

/** The wait before the attempt after `attempts` failed ones: base, 2 base, 4 base, ... at most 5 min. */
function backoffMs(baseMs: number, attempts: number): number {
  return Math.min(MAX_BACKOFF_MS, baseMs * 2 ** Math.min(attempts - 1, 30));
}

/** What finance may read of a failure: its code and safe message, never a stack or an internal detail. */
function errorText(error: unknown, correlationId: string): string {
  const { code, message } = toPublicError(error, correlationId);
  return `${code}: ${message}`;
}

function storedEventOf(event: ClaimedStripeEvent): StoredStripeEvent {
  const data = event.payload.data as { object: Record<string, unknown> };
  return {
    id: event.id,
    type: event.type,
    object: data.object,
    correlationId: event.correlationId,
  };
}

function encodeCursor(row: StripeEventView): string {
  return Buffer.from(JSON.stringify(['stripe_event', row.receivedAt.toISOString(), row.id]), 'utf8').toString('base64url');
}

function decodeCursor(text: string): z.infer<typeof cursor> {
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    parts = undefined;
  }
  const parsed = cursor.safeParse(parts);
  if (!parsed.success) throw new AppError('BAD_REQUEST_INVALID_INPUT', 'The cursor is not one this list returned', { details: { field: 'after' } });
  return parsed.data;
}
