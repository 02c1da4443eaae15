import { AppError } from '@aifactory/errors';
import Stripe from 'stripe';

/** A Stripe event whose signature verified, as Stripe sent it (every field kept, for the stored payload). */
export interface VerifiedStripeEvent {
  /** evt_... */
  id: string;
  type: string;
  /** Unix seconds. */
  created: number;
  livemode?: boolean;
  api_version?: string | null;
  /** The event's object (a checkout session, a charge, a dispute, ...). */
  data: { object: Record<string, unknown> };
  [field: string]: unknown;
}

const INVALID_MESSAGE = 'The Stripe-Signature header does not verify this body, or it is too old';

/**
 * Verifies a Stripe webhook on its raw bytes with the library's own
 * `constructEvent`, against each configured secret: while the endpoint
 * secret rolls, Stripe signs with the old and the new one and either verifies.
 * A missing header, a changed body, a wrong secret and a timestamp older than
 * the tolerance are all WEBHOOK_SIGNATURE_INVALID, with a message that says
 * no more than that.
 */
export function verifyStripeWebhook(
  rawBody: Buffer,
  signatureHeader: string | undefined,
  secrets: readonly string[],
  toleranceSeconds: number,
): VerifiedStripeEvent {
  if (signatureHeader === undefined || signatureHeader === '') throw new AppError('WEBHOOK_SIGNATURE_INVALID', 'The Stripe-Signature header is missing');
  let failure: unknown;
  for (const secret of secrets) {
    let event: unknown;
    try {
      event = Stripe.webhooks.constructEvent(rawBody, signatureHeader, secret, toleranceSeconds);
    } catch (error) {
      failure = error;
      continue;
    }
    return stripeEventOf(event);
  }
  // For the log, Stripe's reason alone (its error also holds the whole payload).
  const reason = failure instanceof Error ? (failure.message.split('\n')[0] ?? '') : String(failure);
  throw new AppError('WEBHOOK_SIGNATURE_INVALID', INVALID_MESSAGE, { cause: new Error(reason) });
}

/** A signed body is Stripe's; one that is not an event is refused rather than stored. */
function stripeEventOf(value: unknown): VerifiedStripeEvent {
  const event = value as Partial<VerifiedStripeEvent> | null;
  const object = event?.data?.object;
  const isEvent =
    typeof event?.id === 'string' &&
    typeof event.type === 'string' &&
    typeof event.created === 'number' &&
    typeof object === 'object' &&
    object !== null &&
    !Array.isArray(object);
  if (!isEvent) throw new AppError('BAD_REQUEST_INVALID_INPUT', 'The webhook body is not a Stripe event');
  return event as VerifiedStripeEvent;
}
