import type { FakeCheckoutSession, FakePortalSession } from './objects.js';

/**
 * The fake's stand-ins for Stripe's hosted pages, so a person on the dev
 * stack can click through a payment: each button posts to the fake, which
 * runs the matching scenario driver (and so sends the webhook).
 */

/** What a button on the checkout page does; the path segment it posts to. */
const CHECKOUT_ACTIONS = ['pay', 'pay-later', 'async-succeeded', 'async-failed', 'expire', 'cancel'] as const;
export type CheckoutAction = (typeof CHECKOUT_ACTIONS)[number];

export function isCheckoutAction(value: string): value is CheckoutAction {
  return (CHECKOUT_ACTIONS as readonly string[]).includes(value);
}

export function checkoutPage(session: FakeCheckoutSession, pendingAsync: boolean): string {
  const button = (action: CheckoutAction, label: string) =>
    `<form method="post" action="/checkout/${encodeURIComponent(session.id)}/${action}"><button type="submit">${escapeHtml(label)}</button></form>`;
  let actions: string;
  if (session.status === 'open') {
    actions = [
      button('pay', 'Pay'),
      button('pay-later', 'Pay with a delayed method (bank debit)'),
      button('expire', 'Let the session expire'),
      button('cancel', 'Back (cancel)'),
    ].join('\n');
  } else if (pendingAsync) {
    actions = ['<p>The delayed payment is processing.</p>', button('async-succeeded', 'The payment arrives'), button('async-failed', 'The payment fails')].join('\n');
  } else {
    actions = `<p>This session is ${escapeHtml(session.status)} (payment ${escapeHtml(session.payment_status)}).</p>`;
  }
  return page(
    'Checkout',
    `<p>Amount: <strong>${escapeHtml(formatAmount(session.amount_total, session.currency))}</strong></p>
<p>Session <code>${escapeHtml(session.id)}</code>, customer <code>${escapeHtml(session.customer ?? '-')}</code>, reference <code>${escapeHtml(session.client_reference_id ?? '-')}</code></p>
${actions}`,
  );
}

export function portalPage(session: FakePortalSession): string {
  const back = session.return_url ? `<p><a href="${escapeHtml(session.return_url)}">Return</a></p>` : '';
  return page('Customer portal', `<p>Customer <code>${escapeHtml(session.customer)}</code>: nothing to manage in the fake.</p>\n${back}`);
}

export function problemPage(message: string): string {
  return page('Something went wrong', `<p>${escapeHtml(message)}</p>`);
}

/** Where Stripe sends the buyer after paying: `{CHECKOUT_SESSION_ID}` in the URL becomes the session's id. */
export function successRedirect(session: FakeCheckoutSession): string | null {
  return session.success_url === null ? null : session.success_url.replaceAll('{CHECKOUT_SESSION_ID}', session.id);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fake Stripe: ${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto}form{display:inline-block;margin:.25rem}</style></head>
<body><h1>Fake Stripe: ${escapeHtml(title)}</h1>
${body}
</body></html>`;
}

function formatAmount(minorUnits: number, currency: string): string {
  const format = new Intl.NumberFormat('en', { style: 'currency', currency: currency.toUpperCase() });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(minorUnits / 10 ** digits);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
