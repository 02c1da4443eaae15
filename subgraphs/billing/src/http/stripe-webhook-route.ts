import { readBody, sendJson } from '@aifactory/http';
import type { SubgraphHttpRoute } from '@aifactory/subgraph-kit';
import type { StripeEventProcessor } from '../domain/stripe-event-processing.js';
import { verifyStripeWebhook } from '../stripe/webhook-signature.js';

/** Stripe's events are a few kilobytes; the gateway's webhook limit (1 MiB) is the same. */
const BODY_LIMIT_BYTES = 1024 * 1024;

export interface StripeWebhookRouteDeps {
  events: Pick<StripeEventProcessor, 'receive'>;
  /**
   * STRIPE_WEBHOOK_SECRET_FILE's secrets as last read, asked per delivery: any
   * one verifies, so a secret is rotated with an overlap and without a restart.
   */
  secrets: () => readonly string[];
  /** STRIPE_WEBHOOK_TOLERANCE_SECONDS: an older signature timestamp is refused (replay). */
  toleranceSeconds: number;
}

/**
 * `POST /webhooks/stripe`, forwarded by the gateway byte for byte with no
 * identity: the signature over the raw body decides (a mutated body or an
 * old timestamp -> 400 WEBHOOK_SIGNATURE_INVALID). A verified event is stored
 * durably, once per Stripe event id, and answered at once; the worker
 * processes it. A redelivery is answered 200 with `duplicate: true` and
 * changes nothing. Anything but 2xx makes Stripe deliver again, so a store
 * that fails (Postgres away) answers 5xx and the event is not lost.
 */
export function stripeWebhookRoute({ events, secrets, toleranceSeconds }: StripeWebhookRouteDeps): SubgraphHttpRoute {
  return {
    method: 'POST',
    path: '/webhooks/stripe',
    access: 'webhook',
    handle: async (ctx) => {
      const raw = await readBody(ctx.req, BODY_LIMIT_BYTES);
      const signature = ctx.req.headers['stripe-signature'];
      const event = verifyStripeWebhook(raw, typeof signature === 'string' ? signature : undefined, secrets(), toleranceSeconds);
      const { duplicate } = await events.receive(event, ctx.correlationId);
      sendJson(ctx.res, 200, { received: true, duplicate });
    },
  };
}
