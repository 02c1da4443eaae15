import { isAppError } from '@aifactory/errors';
import type { Logger } from '@aifactory/logging';
import type { PaymentMetrics } from '../domain/payment-metrics.js';
import type { PaymentProvider } from '../domain/payment-provider.js';
import type { StripeEventProcessor } from '../domain/stripe-event-processing.js';
import { startPeriodicTask, type PeriodicTask } from './periodic-task.js';

export interface StripeEventWorkerOptions {
  processor: StripeEventProcessor;
  /** BILLING_WEBHOOK_POLL_INTERVAL_MS: how soon a retry falls due, or an event stored by another instance, is seen. */
  everyMs: number;
  logger: Logger;
}

/** Events one round processes at most: stop() waits for the round under way, so this bounds how long a shutdown waits. */
const ROUND_LIMIT = 50;

export interface StripeEventWorker {
  /** Stops polling and waits for the events being processed. */
  stop(): Promise<void>;
}

/**
 * Processes stored Stripe events (StripeEventProcessor) every `everyMs`, and
 * at once when this instance stores one or revives a dead one, so a webhook
 * is usually processed within milliseconds of its answer (seed 002: lag p99
 * < 60 s). Rounds never overlap; a nudge during a round runs another right
 * after it. Any number of instances may run it: claims skip what another
 * holds. A failed round (Postgres away) is logged and the next runs on time.
 */
export function startStripeEventWorker({ processor, everyMs, logger }: StripeEventWorkerOptions): StripeEventWorker {
  let stopped = false;
  const task = startPeriodicTask({
    name: 'Stripe event processing round',
    everyMs,
    logger,
    round: async () => {
      // A full round may mean more are due: keep going until one comes back short.
      for (;;) {
        const results = await processor.processDue(ROUND_LIMIT);
        for (const { id, type, outcome, error } of results) {
          if (outcome === 'retried') logger.warn({ err: error, stripeEventId: id, type }, 'Stripe event processing failed; it is retried');
          if (outcome === 'dead') logger.error({ err: error, stripeEventId: id, type }, 'Stripe event processing failed for the last time; it is dead-lettered');
        }
        if (results.length < ROUND_LIMIT || stopped) return;
      }
    },
  });
  const unsubscribe = processor.onDue(task.wake);
  return {
    stop: async () => {
      stopped = true;
      unsubscribe();
      await task.stop();
    },
  };
}

export interface StripeReachabilityProbeOptions {
  provider: Pick<PaymentProvider, 'probe'>;
  metrics: PaymentMetrics;
  logger: Logger;
  /** Pause between probes. */
  everyMs?: number;
}

/**
 * Asks Stripe for something cheap every `everyMs` (30 s), so
 * `aif_billing_stripe_reachable` is current while no payment calls Stripe.
 * A refusal (PAYMENT_PROVIDER_REFUSED) means Stripe answered: it is
 * reachable, and the refusal is logged, since a probe should never be refused.
 */
export function startStripeReachabilityProbe({ provider, metrics, logger, everyMs = 30_000 }: StripeReachabilityProbeOptions): PeriodicTask {
  return startPeriodicTask({
    name: 'Stripe reachability probe',
    everyMs,
    logger,
    round: async () => {
      try {
        await provider.probe();
        metrics.stripeReachable(true);
      } catch (error) {
        const answered = isAppError(error) && error.code === 'PAYMENT_PROVIDER_REFUSED';
        metrics.stripeReachable(answered);
        if (answered) logger.error({ err: error }, 'Stripe refused the reachability probe');
        else logger.warn({ err: error }, 'Stripe cannot be reached');
      }
    },
  });
}
