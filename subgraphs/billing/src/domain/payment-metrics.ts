import type pg from 'pg';
import type { Counter, Gauge, Histogram } from 'prom-client';
import type { Clock } from '@aifactory/clock';
import type { ServiceMetrics } from '@aifactory/telemetry';
import type { StripeEventsStore } from '../data/stripe-events-store.js';

/**
 * Seed 002 asks webhook processing lag p99 < 60 s: the buckets resolve the
 * seconds around that budget and show how far past it a backlog runs.
 */
const WEBHOOK_LAG_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120];

/** How processing a Stripe event ended, as `aif_billing_webhook_events_total` counts it. */
export type StripeEventOutcomeLabel = 'processed' | 'flagged' | 'unhandled' | 'retried' | 'dead';

/**
 * Payments on `/metrics`: webhook lag and outcomes, the backlog and dead
 * letters (read from the database at scrape, so every instance reports the
 * same), and whether Stripe answers. Built with the services and attached
 * to the process's metrics once they exist; what is observed before that is
 * not counted, except Stripe's reachability, which is kept and reported
 * from the attach on.
 */
export class PaymentMetrics {
  private lag: Histogram<never> | undefined;
  private events: Counter<'type' | 'outcome'> | undefined;
  private reachable: Gauge<never> | undefined;
  private lastReachable: boolean | undefined;

  constructor(
    private readonly pool: pg.Pool,
    private readonly store: StripeEventsStore,
    private readonly clock: Clock,
  ) {}

  attach(metrics: ServiceMetrics): void {
    this.lag = metrics.histogram('aif_billing_webhook_lag_seconds', 'Seconds from a Stripe event received to it processed.', [], WEBHOOK_LAG_BUCKETS);
    this.events = metrics.counter(
      'aif_billing_webhook_events_total',
      'Stripe events processed by type and outcome: processed, flagged (for finance), unhandled (no handler for the type), ' +
        'retried (failed, tried again later), dead (dead-lettered).',
      ['type', 'outcome'],
    );
    // A scrape collects every gauge at once: one read serves the three, the first to collect starts it.
    let backlog: ReturnType<PaymentMetrics['backlog']> | undefined;
    const readBacklog = () => {
      backlog ??= this.backlog().finally(() => {
        backlog = undefined;
      });
      return backlog;
    };
    metrics.gauge('aif_billing_webhook_pending', 'Stripe events stored and not processed yet, across every instance.', [], async (gauge) => {
      const read = await readBacklog();
      if (read) gauge.set(read.pending);
    });
    metrics.gauge('aif_billing_webhook_oldest_pending_seconds', 'Age of the oldest Stripe event not processed yet; 0 when none waits.', [], async (gauge) => {
      const read = await readBacklog();
      if (read) gauge.set(read.oldestPendingSeconds);
    });
    metrics.gauge('aif_billing_webhook_dead_letters', 'Stripe events whose processing used up its attempts (dead), waiting for finance.', [], async (gauge) => {
      const read = await readBacklog();
      if (read) gauge.set(read.dead);
    });
    this.reachable = metrics.gauge('aif_billing_stripe_reachable', "1 while Stripe's API answers billing, 0 while it cannot be reached.", []);
    if (this.lastReachable !== undefined) this.reachable.set(this.lastReachable ? 1 : 0);
  }

  /** One event's processing ended; `lagSeconds` once it is processed (received to processed). */
  observeEvent(type: string, outcome: StripeEventOutcomeLabel, lagSeconds: number | null): void {
    this.events?.inc({ type, outcome });
    if (lagSeconds !== null) this.lag?.observe(lagSeconds);
  }

  /** Whether Stripe answered the latest call or probe (StripePaymentProvider's onReachability, the probe). */
  stripeReachable(reachable: boolean): void {
    this.lastReachable = reachable;
    this.reachable?.set(reachable ? 1 : 0);
  }

  /** Undefined while Postgres cannot be read: a scrape must not fail for it, and the gauges keep their last values. */
  private async backlog(): Promise<{ pending: number; oldestPendingSeconds: number; dead: number } | undefined> {
    const read = await this.store.backlog(this.pool).catch(() => undefined);
    if (read === undefined) return undefined;
    const oldest = read.oldestPendingReceivedAt;
    return {
      pending: read.pending,
      oldestPendingSeconds: oldest === null ? 0 : Math.max(0, (this.clock.nowMs() - oldest.getTime()) / 1000),
      dead: read.dead,
    };
  }
}
