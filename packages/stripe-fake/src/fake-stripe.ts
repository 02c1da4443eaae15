import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { checkoutPage, isCheckoutAction, portalPage, problemPage, successRedirect, type CheckoutAction } from './checkout-pages.js';
import {
  stripeId,
  unixNow,
  type FakeCharge,
  type FakeCheckoutSession,
  type FakeCustomer,
  type FakeDispute,
  type FakePaymentIntent,
  type FakePortalSession,
  type FakeRefund,
  type StripeEventJson,
  type StripeList,
} from './objects.js';
import {
  canonicalParams,
  parameterInvalid,
  parameterMissing,
  ParamReader,
  parseStripeForm,
  resourceMissing,
  StripeFailure,
  type Params,
} from './params.js';

export interface FakeStripeOptions {
  /** The secret key callers must present (`Authorization: Bearer ...`); a random `sk_test_` key when left out. */
  apiKey?: string;
  /** The endpoint secret webhooks are signed with; a random `whsec_` secret when left out. */
  webhookSecret?: string;
  /** Where events are POSTed; null (the default): events are only kept. */
  webhookUrl?: string | null;
  /** 0 (the default): a free port. */
  port?: number;
  /**
   * A JSON file the fake keeps its objects in (read at start, written after
   * every request it answers), so that, like Stripe, it still knows the
   * customers and sessions billing recorded after a restart (the dev stack);
   * unset (the default): memory only.
   */
  stateFile?: string;
}

/** What a state file holds: every object map, and the answers kept under idempotency keys. */
type PersistedState = Record<string, [string, unknown][]>;

/** One API call as the fake answered it, handed to the `onRequest` hook. */
export interface FakeStripeCall {
  method: string;
  path: string;
  idempotencyKey: string | null;
  params: Record<string, unknown>;
  /** The HTTP status the fake is about to answer with. */
  status: number;
}

export type FakeStripeHook = (call: FakeStripeCall) => void | Promise<void>;

export interface DeliverOptions {
  /** The signature's timestamp, Unix seconds (an old one makes an event the receiver must refuse). */
  timestamp?: number;
  /** Changes the body after it was signed (a tampered event). */
  mutate?: (body: string) => string;
  /** Signs with another secret than the fake's. */
  secret?: string;
}

/** One webhook POST and what the endpoint answered; status 0 when it did not answer. */
export interface WebhookDelivery {
  eventId: string;
  type: string;
  url: string;
  status: number;
  body: string;
}

export interface FakeStripe {
  /** `http://127.0.0.1:<port>`: STRIPE_API_URL, or the `stripe` library's host/port/protocol. */
  readonly url: string;
  readonly apiKey: string;
  readonly webhookSecret: string;
  setWebhookUrl(url: string | null): void;
  /** On: every API call answers 503, as when Stripe is down. */
  setUnavailable(on: boolean): void;
  /** Runs after the fake acted on an API call and before it answers (a test may kill the caller there). */
  onRequest(hook: FakeStripeHook | null): void;
  sessions(): FakeCheckoutSession[];
  customers(): FakeCustomer[];
  paymentIntents(): FakePaymentIntent[];
  charges(): FakeCharge[];
  refunds(): FakeRefund[];
  disputes(): FakeDispute[];
  events(): StripeEventJson[];
  deliveries(): WebhookDelivery[];
  /**
   * Scenario drivers: each changes the fake's objects as Stripe would, makes
   * the event, delivers it when a webhook URL is set (throwing when the
   * endpoint does not answer 2xx) and returns it.
   */
  completeCheckout(sessionId: string, options?: { paid?: boolean; amountTotal?: number }): Promise<StripeEventJson>;
  asyncPaymentSucceeded(sessionId: string): Promise<StripeEventJson>;
  asyncPaymentFailed(sessionId: string): Promise<StripeEventJson>;
  expireCheckout(sessionId: string): Promise<StripeEventJson>;
  /** A refund made in Stripe's dashboard: charge.refunded. */
  refundOutside(paymentIntentId: string, amount: number): Promise<StripeEventJson>;
  /** charge.dispute.created, for the whole charge unless an amount is given. */
  openDispute(paymentIntentId: string, amount?: number): Promise<StripeEventJson>;
  closeDispute(disputeId: string, outcome: 'won' | 'lost'): Promise<StripeEventJson>;
  /** POSTs an event (again) to the webhook URL, signed; answers what the endpoint answered. */
  deliver(event: StripeEventJson, options?: DeliverOptions): Promise<{ status: number; body: string }>;
  /** The Stripe-Signature header for a payload, made by the `stripe` library's own test helper. */
  sign(payload: string, options?: { timestamp?: number; secret?: string }): string;
  close(): Promise<void>;
}

interface ApiRequest {
  params: ParamReader;
  /** The id in the path, for routes that name one. */
  id: string;
  requestId: string;
  idempotencyKey: string | null;
}

interface ApiResult {
  body: unknown;
  /** Events sent to the webhook URL once the answer went out (Stripe's are asynchronous too). */
  followUp?: StripeEventJson[];
}

interface Route {
  method: string;
  pattern: RegExp;
  handle(request: ApiRequest): ApiResult;
}

interface StoredAnswer {
  endpoint: string;
  params: string;
  status: number;
  body: string;
}

const MAX_BODY_BYTES = 1024 * 1024;
const DELIVERY_TIMEOUT_MS = 10_000;
/** Stripe's own bounds for one Checkout amount (in the smallest unit of a two-decimal currency). */
const MIN_CHECKOUT_AMOUNT = 50;
const MAX_CHECKOUT_AMOUNT = 99_999_999;
const CHECKOUT_LIFETIME_SECONDS = 24 * 60 * 60;

function randomSecret(prefix: string): string {
  return prefix + randomBytes(24).toString('hex');
}

function copy<T>(values: Iterable<T>): T[] {
  return structuredClone([...values]);
}

class FakeStripeServer implements FakeStripe {
  readonly apiKey: string;
  readonly webhookSecret: string;
  /** Known once listening. */
  url = '';
  private webhookUrl: string | null;
  private unavailable = false;
  private hook: FakeStripeHook | null = null;
  private readonly customerMap = new Map<string, FakeCustomer>();
  private readonly sessionMap = new Map<string, FakeCheckoutSession>();
  /** payment_intent_data[metadata] of each session: the metadata its payment intent gets. */
  private readonly intentMetadata = new Map<string, Record<string, string>>();
  private readonly intentMap = new Map<string, FakePaymentIntent>();
  private readonly chargeMap = new Map<string, FakeCharge>();
  private readonly refundMap = new Map<string, FakeRefund>();
  private readonly disputeMap = new Map<string, FakeDispute>();
  private readonly portalMap = new Map<string, FakePortalSession>();
  private readonly eventMap = new Map<string, StripeEventJson>();
  private readonly answers = new Map<string, StoredAnswer>();
  private readonly deliveryLog: WebhookDelivery[] = [];
  private readonly background = new Set<Promise<void>>();
  private readonly routes: Route[];
  private readonly server: Server = createServer((req, res) => void this.handle(req, res));

  private readonly stateFile: string | null;

  constructor(options: FakeStripeOptions) {
    this.stateFile = options.stateFile ?? null;
    if (this.stateFile !== null && existsSync(this.stateFile)) this.restore(JSON.parse(readFileSync(this.stateFile, 'utf8')) as PersistedState);
    this.apiKey = options.apiKey ?? randomSecret('sk_test_');
    this.webhookSecret = options.webhookSecret ?? randomSecret('whsec_');
    this.webhookUrl = options.webhookUrl ?? null;
    this.routes = [
      { method: 'POST', pattern: /^\/v1\/customers$/, handle: (request) => this.createCustomer(request) },
      { method: 'GET', pattern: /^\/v1\/customers$/, handle: (request) => this.listCustomers(request) },
      { method: 'GET', pattern: /^\/v1\/customers\/([^/]+)$/, handle: (request) => ({ body: this.found(this.customerMap, 'customer', request.id) }) },
      { method: 'POST', pattern: /^\/v1\/checkout\/sessions$/, handle: (request) => this.createCheckoutSession(request) },
      { method: 'GET', pattern: /^\/v1\/checkout\/sessions\/([^/]+)$/, handle: (request) => ({ body: this.found(this.sessionMap, 'checkout.session', request.id) }) },
      { method: 'POST', pattern: /^\/v1\/checkout\/sessions\/([^/]+)\/expire$/, handle: (request) => this.expireCheckoutSession(request) },
      { method: 'GET', pattern: /^\/v1\/payment_intents\/([^/]+)$/, handle: (request) => ({ body: this.found(this.intentMap, 'payment_intent', request.id) }) },
      { method: 'POST', pattern: /^\/v1\/refunds$/, handle: (request) => this.createRefund(request) },
      { method: 'GET', pattern: /^\/v1\/refunds$/, handle: (request) => this.listRefunds(request) },
      { method: 'GET', pattern: /^\/v1\/refunds\/([^/]+)$/, handle: (request) => ({ body: this.found(this.refundMap, 'refund', request.id) }) },
      { method: 'POST', pattern: /^\/v1\/billing_portal\/sessions$/, handle: (request) => this.createPortalSession(request) },
      { method: 'GET', pattern: /^\/v1\/events$/, handle: (request) => this.listEvents(request) },
      { method: 'GET', pattern: /^\/v1\/events\/([^/]+)$/, handle: (request) => ({ body: this.found(this.eventMap, 'event', request.id) }) },
    ];
  }

  setWebhookUrl(url: string | null): void {
    this.webhookUrl = url;
  }

  setUnavailable(on: boolean): void {
    this.unavailable = on;
  }

  onRequest(hook: FakeStripeHook | null): void {
    this.hook = hook;
  }

  sessions(): FakeCheckoutSession[] {
    return copy(this.sessionMap.values());
  }

  customers(): FakeCustomer[] {
    return copy(this.customerMap.values());
  }

  paymentIntents(): FakePaymentIntent[] {
    return copy(this.intentMap.values());
  }

  charges(): FakeCharge[] {
    return copy(this.chargeMap.values());
  }

  refunds(): FakeRefund[] {
    return copy(this.refundMap.values());
  }

  disputes(): FakeDispute[] {
    return copy(this.disputeMap.values());
  }

  events(): StripeEventJson[] {
    return copy(this.eventMap.values());
  }

  deliveries(): WebhookDelivery[] {
    return copy(this.deliveryLog);
  }

  // ---- scenario drivers ----

  async completeCheckout(sessionId: string, options: { paid?: boolean; amountTotal?: number } = {}): Promise<StripeEventJson> {
    const session = this.sessionIn(sessionId, 'open');
    const paid = options.paid ?? true;
    if (options.amountTotal !== undefined) {
      session.amount_total = options.amountTotal;
      session.amount_subtotal = options.amountTotal;
    }
    const intent = this.createPaymentIntent(session, paid);
    session.status = 'complete';
    session.url = null;
    session.payment_intent = intent.id;
    session.payment_status = paid ? 'paid' : 'unpaid';
    return this.dispatch(this.emit('checkout.session.completed', session));
  }

  async asyncPaymentSucceeded(sessionId: string): Promise<StripeEventJson> {
    const { session, intent } = this.processingPayment(sessionId);
    intent.status = 'succeeded';
    intent.amount_received = intent.amount;
    intent.latest_charge = this.createCharge(intent).id;
    session.payment_status = 'paid';
    return this.dispatch(this.emit('checkout.session.async_payment_succeeded', session));
  }

  async asyncPaymentFailed(sessionId: string): Promise<StripeEventJson> {
    const { session, intent } = this.processingPayment(sessionId);
    intent.status = 'requires_payment_method';
    return this.dispatch(this.emit('checkout.session.async_payment_failed', session));
  }

  async expireCheckout(sessionId: string): Promise<StripeEventJson> {
    return this.dispatch(this.expire(this.sessionIn(sessionId, 'open')));
  }

  async refundOutside(paymentIntentId: string, amount: number): Promise<StripeEventJson> {
    if (!Number.isSafeInteger(amount)) throw new Error(`fake Stripe: a refund amount is an integer of minor units, not ${amount}`);
    const { charge } = this.refund(paymentIntentId, amount, {}, null);
    return this.dispatch(this.emit('charge.refunded', charge));
  }

  async openDispute(paymentIntentId: string, amount?: number): Promise<StripeEventJson> {
    const charge = this.chargeOf(paymentIntentId);
    if (charge.disputed) throw new Error(`fake Stripe: charge ${charge.id} is already disputed`);
    const disputed = amount ?? charge.amount;
    if (!Number.isSafeInteger(disputed) || disputed <= 0 || disputed > charge.amount) {
      throw new Error(`fake Stripe: a dispute of ${disputed} does not fit charge ${charge.id} of ${charge.amount}`);
    }
    charge.disputed = true;
    const dispute: FakeDispute = {
      id: stripeId('dp_'),
      object: 'dispute',
      amount: disputed,
      currency: charge.currency,
      charge: charge.id,
      payment_intent: charge.payment_intent,
      status: 'needs_response',
      reason: 'fraudulent',
      is_charge_refundable: false,
      metadata: {},
      created: unixNow(),
      livemode: false,
    };
    this.disputeMap.set(dispute.id, dispute);
    return this.dispatch(this.emit('charge.dispute.created', dispute));
  }

  async closeDispute(disputeId: string, outcome: 'won' | 'lost'): Promise<StripeEventJson> {
    const dispute = this.disputeMap.get(disputeId);
    if (!dispute) throw new Error(`fake Stripe: no dispute ${disputeId}`);
    if (dispute.status !== 'needs_response') throw new Error(`fake Stripe: dispute ${disputeId} is already ${dispute.status}`);
    dispute.status = outcome;
    return this.dispatch(this.emit('charge.dispute.closed', dispute));
  }

  async deliver(event: StripeEventJson, options: DeliverOptions = {}): Promise<{ status: number; body: string }> {
    const url = this.webhookUrl;
    if (url === null) throw new Error('fake Stripe: no webhook URL is set (setWebhookUrl)');
    const payload = JSON.stringify(event, null, 2);
    const signature = this.sign(payload, options);
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json; charset=utf-8',
        'stripe-signature': signature,
        'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
      },
      body: options.mutate ? options.mutate(payload) : payload,
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    const answer = { status: response.status, body: await response.text() };
    this.deliveryLog.push({ eventId: event.id, type: event.type, url, ...answer });
    return answer;
  }

  sign(payload: string, options: { timestamp?: number; secret?: string } = {}): string {
    return Stripe.webhooks.generateTestHeaderString({
      payload,
      secret: options.secret ?? this.webhookSecret,
      ...(options.timestamp === undefined ? {} : { timestamp: options.timestamp }),
    });
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.background]);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** An event delivered by a driver: the caller (a test, a page) hears of a failed delivery. */
  private async dispatch(event: StripeEventJson): Promise<StripeEventJson> {
    if (this.webhookUrl === null) return event;
    const { status, body } = await this.deliver(event);
    if (status < 200 || status > 299) throw new Error(`fake Stripe: the webhook endpoint answered ${event.type} ${event.id} with ${status}: ${body}`);
    return event;
  }

  /** An event that follows an API answer: kept in deliveries(), whatever the endpoint did. */
  private deliverInBackground(events: StripeEventJson[]): void {
    if (this.webhookUrl === null || events.length === 0) return;
    const url = this.webhookUrl;
    const delivery = (async () => {
      for (const event of events) {
        await this.deliver(event).catch((error: unknown) => {
          this.deliveryLog.push({ eventId: event.id, type: event.type, url, status: 0, body: String(error) });
        });
      }
    })();
    this.background.add(delivery);
    void delivery.finally(() => this.background.delete(delivery));
  }

  private emit(type: string, object: object, request: StripeEventJson['request'] = { id: null, idempotency_key: null }): StripeEventJson {
    const event: StripeEventJson = {
      id: stripeId('evt_'),
      object: 'event',
      api_version: Stripe.API_VERSION,
      created: unixNow(),
      type,
      data: { object: structuredClone(object) as Record<string, unknown> },
      livemode: false,
      pending_webhooks: this.webhookUrl === null ? 0 : 1,
      request,
    };
    this.eventMap.set(event.id, event);
    return event;
  }

  // ---- state changes shared by the API and the drivers ----

  private sessionIn(sessionId: string, status: FakeCheckoutSession['status']): FakeCheckoutSession {
    const session = this.sessionMap.get(sessionId);
    if (!session) throw new Error(`fake Stripe: no checkout session ${sessionId}`);
    if (session.status !== status) throw new Error(`fake Stripe: checkout session ${sessionId} is ${session.status}, not ${status}`);
    return session;
  }

  private processingPayment(sessionId: string): { session: FakeCheckoutSession; intent: FakePaymentIntent } {
    const session = this.sessionIn(sessionId, 'complete');
    const intent = session.payment_intent === null ? undefined : this.intentMap.get(session.payment_intent);
    if (!intent || intent.status !== 'processing') throw new Error(`fake Stripe: checkout session ${sessionId} has no delayed payment processing`);
    return { session, intent };
  }

  private createPaymentIntent(session: FakeCheckoutSession, paid: boolean): FakePaymentIntent {
    const intent: FakePaymentIntent = {
      id: stripeId('pi_'),
      object: 'payment_intent',
      amount: session.amount_total,
      amount_received: paid ? session.amount_total : 0,
      currency: session.currency,
      customer: session.customer,
      status: paid ? 'succeeded' : 'processing',
      latest_charge: null,
      metadata: { ...this.intentMetadata.get(session.id) },
      created: unixNow(),
      livemode: false,
    };
    this.intentMap.set(intent.id, intent);
    if (paid) intent.latest_charge = this.createCharge(intent).id;
    return intent;
  }

  private createCharge(intent: FakePaymentIntent): FakeCharge {
    const charge: FakeCharge = {
      id: stripeId('ch_'),
      object: 'charge',
      amount: intent.amount,
      amount_captured: intent.amount,
      amount_refunded: 0,
      currency: intent.currency,
      customer: intent.customer,
      payment_intent: intent.id,
      paid: true,
      captured: true,
      refunded: false,
      disputed: false,
      status: 'succeeded',
      metadata: {},
      created: unixNow(),
      livemode: false,
    };
    this.chargeMap.set(charge.id, charge);
    return charge;
  }

  private chargeOf(paymentIntentId: string): FakeCharge {
    const intent = this.intentMap.get(paymentIntentId);
    if (!intent) throw resourceMissing('payment_intent', paymentIntentId, 'payment_intent');
    const charge = intent.latest_charge === null ? undefined : this.chargeMap.get(intent.latest_charge);
    if (!charge) {
      throw new StripeFailure(400, 'invalid_request_error', `PaymentIntent ${paymentIntentId} does not have a successful charge to refund.`, 'payment_intent_unexpected_state', 'payment_intent');
    }
    return charge;
  }

  private refund(paymentIntentId: string, amount: number | undefined, metadata: Record<string, string>, reason: string | null): { refund: FakeRefund; charge: FakeCharge } {
    const charge = this.chargeOf(paymentIntentId);
    if (charge.disputed) throw new StripeFailure(400, 'invalid_request_error', `Charge ${charge.id} has been charged back; cannot issue a refund.`, 'charge_disputed');
    const left = charge.amount - charge.amount_refunded;
    if (left === 0) throw new StripeFailure(400, 'invalid_request_error', `Charge ${charge.id} has already been refunded.`, 'charge_already_refunded');
    const refunded = amount ?? left;
    if (refunded <= 0) throw parameterInvalid('amount', 'Refund amount must be positive.', 'parameter_invalid_integer');
    if (refunded > left) {
      throw new StripeFailure(400, 'invalid_request_error', `Refund amount (${refunded}) is greater than unrefunded amount on charge (${left})`, 'amount_too_large', 'amount');
    }
    charge.amount_refunded += refunded;
    charge.refunded = charge.amount_refunded === charge.amount;
    const refund: FakeRefund = {
      id: stripeId('re_'),
      object: 'refund',
      amount: refunded,
      currency: charge.currency,
      charge: charge.id,
      payment_intent: charge.payment_intent,
      status: 'succeeded',
      reason,
      metadata,
      created: unixNow(),
    };
    this.refundMap.set(refund.id, refund);
    return { refund, charge };
  }

  private expire(session: FakeCheckoutSession, request: StripeEventJson['request'] = { id: null, idempotency_key: null }): StripeEventJson {
    session.status = 'expired';
    session.url = null;
    return this.emit('checkout.session.expired', session, request);
  }

  // ---- API endpoints ----

  private found<T>(map: Map<string, T>, kind: string, id: string): T {
    const value = map.get(id);
    if (value === undefined) throw resourceMissing(kind, id, 'id', 404);
    return value;
  }

  private list<T extends { id: string }>(request: ApiRequest, path: string, items: T[]): { body: StripeList<T> } {
    const limit = request.params.integer('limit', 1) ?? 10;
    if (limit > 100) throw parameterInvalid('limit', 'This value must be less than or equal to 100.', 'parameter_invalid_integer');
    // Stripe lists newest first.
    let newestFirst = [...items].reverse();
    const after = request.params.string('starting_after');
    if (after !== undefined) {
      const index = newestFirst.findIndex((item) => item.id === after);
      if (index === -1) throw resourceMissing('object', after, 'starting_after');
      newestFirst = newestFirst.slice(index + 1);
    }
    return { body: { object: 'list', data: newestFirst.slice(0, limit), has_more: newestFirst.length > limit, url: path } };
  }

  private createCustomer({ params }: ApiRequest): ApiResult {
    const customer: FakeCustomer = {
      id: stripeId('cus_'),
      object: 'customer',
      created: unixNow(),
      email: params.string('email') ?? null,
      name: params.string('name') ?? null,
      description: params.string('description') ?? null,
      metadata: params.metadata(),
      livemode: false,
    };
    this.customerMap.set(customer.id, customer);
    return { body: customer };
  }

  private listCustomers(request: ApiRequest): ApiResult {
    const email = request.params.string('email');
    return this.list(request, '/v1/customers', [...this.customerMap.values()].filter((customer) => email === undefined || customer.email === email));
  }

  private createCheckoutSession({ params }: ApiRequest): ApiResult {
    const mode = params.requiredString('mode');
    if (mode !== 'payment') throw parameterInvalid('mode', `The fake Stripe supports mode=payment only, not ${mode}.`);
    const lineItems = params.array('line_items');
    if (!lineItems || lineItems.length === 0) throw parameterMissing('line_items');
    let currency: string | undefined;
    let total = 0;
    for (const [index, item] of lineItems.entries()) {
      const quantity = item.integer('quantity', 1) ?? 1;
      const priceData = item.object('price_data');
      if (!priceData) throw parameterMissing(`line_items[${index}][price_data]`);
      const itemCurrency = priceData.requiredString('currency').toLowerCase();
      if (!/^[a-z]{3}$/.test(itemCurrency)) throw parameterInvalid(`line_items[${index}][price_data][currency]`, `Invalid currency: ${itemCurrency}`);
      if (currency !== undefined && currency !== itemCurrency) {
        throw parameterInvalid(`line_items[${index}][price_data][currency]`, 'All line items must use the same currency.');
      }
      currency = itemCurrency;
      const unitAmount = priceData.integer('unit_amount');
      if (unitAmount === undefined) throw parameterMissing(`line_items[${index}][price_data][unit_amount]`);
      if (!priceData.object('product_data')?.string('name') && !priceData.string('product')) {
        throw parameterMissing(`line_items[${index}][price_data][product_data][name]`);
      }
      total += unitAmount * quantity;
    }
    if (total < MIN_CHECKOUT_AMOUNT) throw new StripeFailure(400, 'invalid_request_error', `The Checkout Session's total amount due must add up to at least ${MIN_CHECKOUT_AMOUNT}.`, 'amount_too_small');
    if (total > MAX_CHECKOUT_AMOUNT) throw new StripeFailure(400, 'invalid_request_error', `The Checkout Session's total amount due must be no more than ${MAX_CHECKOUT_AMOUNT}.`, 'amount_too_large');
    const customer = params.string('customer');
    if (customer !== undefined && !this.customerMap.has(customer)) throw resourceMissing('customer', customer, 'customer');
    const created = unixNow();
    const expiresAt = params.integer('expires_at') ?? created + CHECKOUT_LIFETIME_SECONDS;
    if (expiresAt < created + 30 * 60 || expiresAt > created + CHECKOUT_LIFETIME_SECONDS) {
      throw parameterInvalid('expires_at', 'The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.', 'parameter_invalid_integer');
    }
    const id = stripeId('cs_test_');
    const session: FakeCheckoutSession = {
      id,
      object: 'checkout.session',
      mode: 'payment',
      amount_subtotal: total,
      amount_total: total,
      currency: currency!,
      customer: customer ?? null,
      client_reference_id: params.string('client_reference_id') ?? null,
      metadata: params.metadata(),
      payment_intent: null,
      payment_status: 'unpaid',
      status: 'open',
      success_url: params.string('success_url') ?? null,
      cancel_url: params.string('cancel_url') ?? null,
      url: `${this.url}/checkout/${id}`,
      expires_at: expiresAt,
      created,
      livemode: false,
    };
    this.sessionMap.set(id, session);
    this.intentMetadata.set(id, params.object('payment_intent_data')?.metadata() ?? {});
    return { body: session };
  }

  private expireCheckoutSession({ id, requestId, idempotencyKey }: ApiRequest): ApiResult {
    const session = this.found(this.sessionMap, 'checkout.session', id);
    if (session.status !== 'open') {
      throw new StripeFailure(400, 'invalid_request_error', `Only Checkout Sessions with a status in ["open"] can be expired. This session is ${session.status}.`);
    }
    const event = this.expire(session, { id: requestId, idempotency_key: idempotencyKey });
    return { body: session, followUp: [event] };
  }

  private createRefund({ params, requestId, idempotencyKey }: ApiRequest): ApiResult {
    let paymentIntentId = params.string('payment_intent');
    const chargeId = params.string('charge');
    if (paymentIntentId === undefined && chargeId === undefined) throw parameterMissing('payment_intent');
    if (chargeId !== undefined) {
      const charge = this.chargeMap.get(chargeId);
      if (!charge) throw resourceMissing('charge', chargeId, 'charge');
      if (paymentIntentId !== undefined && paymentIntentId !== charge.payment_intent) throw parameterInvalid('charge', `Charge ${chargeId} does not belong to ${paymentIntentId}.`);
      paymentIntentId = charge.payment_intent;
    }
    const { refund, charge } = this.refund(paymentIntentId!, params.integer('amount', 1), params.metadata(), params.string('reason') ?? null);
    return { body: refund, followUp: [this.emit('charge.refunded', charge, { id: requestId, idempotency_key: idempotencyKey })] };
  }

  private listRefunds(request: ApiRequest): ApiResult {
    const charge = request.params.string('charge');
    const paymentIntent = request.params.string('payment_intent');
    const refunds = [...this.refundMap.values()].filter(
      (refund) => (charge === undefined || refund.charge === charge) && (paymentIntent === undefined || refund.payment_intent === paymentIntent),
    );
    return this.list(request, '/v1/refunds', refunds);
  }

  private createPortalSession({ params }: ApiRequest): ApiResult {
    const customer = params.requiredString('customer');
    if (!this.customerMap.has(customer)) throw resourceMissing('customer', customer, 'customer');
    const id = stripeId('bps_');
    const session: FakePortalSession = {
      id,
      object: 'billing_portal.session',
      customer,
      return_url: params.string('return_url') ?? null,
      url: `${this.url}/portal/${id}`,
      created: unixNow(),
      livemode: false,
    };
    this.portalMap.set(id, session);
    return { body: session };
  }

  private listEvents(request: ApiRequest): ApiResult {
    const type = request.params.string('type');
    return this.list(request, '/v1/events', [...this.eventMap.values()].filter((event) => type === undefined || event.type === type));
  }

  // ---- HTTP ----

  /** The maps a state file keeps, by name. */
  private persistedMaps(): Record<string, Map<string, unknown>> {
    return {
      customers: this.customerMap,
      sessions: this.sessionMap,
      intentMetadata: this.intentMetadata,
      intents: this.intentMap,
      charges: this.chargeMap,
      refunds: this.refundMap,
      disputes: this.disputeMap,
      portals: this.portalMap,
      events: this.eventMap,
      answers: this.answers,
    };
  }

  private restore(state: PersistedState): void {
    for (const [name, map] of Object.entries(this.persistedMaps())) {
      for (const [key, value] of state[name] ?? []) map.set(key, value);
    }
  }

  /** Written whole to a temporary file and renamed over the old one, so a crash never leaves half a file. */
  private persist(): void {
    if (this.stateFile === null) return;
    const state: PersistedState = Object.fromEntries(Object.entries(this.persistedMaps()).map(([name, map]) => [name, [...map.entries()]]));
    writeFileSync(`${this.stateFile}.tmp`, JSON.stringify(state));
    renameSync(`${this.stateFile}.tmp`, this.stateFile);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake-stripe');
    try {
      if (url.pathname.startsWith('/v1/')) await this.handleApi(req, res, url);
      else await this.handlePage(req, res, url);
      this.persist();
    } catch (error) {
      if (!res.headersSent) {
        const failure = new StripeFailure(500, 'api_error', `fake Stripe failed: ${error instanceof Error ? error.message : String(error)}`);
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify(failure));
      } else {
        res.destroy();
      }
    }
  }

  private async handleApi(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = req.method ?? 'GET';
    const requestId = stripeId('req_');
    const idempotencyKey = method === 'POST' ? headerValue(req.headers['idempotency-key']) : null;
    let params: Params = {};
    let status: number;
    let answer: string;
    let replayed = false;
    let followUp: StripeEventJson[] = [];
    try {
      const body = method === 'POST' ? await readBody(req) : url.search.slice(1);
      if (this.unavailable) throw new StripeFailure(503, 'api_error', 'Stripe is unavailable (fake Stripe: setUnavailable).', undefined, undefined, false);
      this.authenticate(headerValue(req.headers.authorization));
      params = parseStripeForm(body);
      const endpoint = `${method} ${url.pathname}`;
      const stored = idempotencyKey === null ? undefined : this.answers.get(idempotencyKey);
      if (stored) {
        if (stored.endpoint !== endpoint || stored.params !== canonicalParams(params)) {
          throw new StripeFailure(
            400,
            'idempotency_error',
            `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
            undefined,
            undefined,
            false,
          );
        }
        ({ status, body: answer } = stored);
        replayed = true;
      } else {
        try {
          const result = this.route(method, url.pathname, params, requestId, idempotencyKey);
          status = 200;
          answer = JSON.stringify(result.body);
          followUp = result.followUp ?? [];
        } catch (error) {
          if (!(error instanceof StripeFailure) || !error.executed) throw error;
          status = error.status;
          answer = JSON.stringify(error);
        }
        if (idempotencyKey !== null) this.answers.set(idempotencyKey, { endpoint, params: canonicalParams(params), status, body: answer });
      }
    } catch (error) {
      if (!(error instanceof StripeFailure)) throw error;
      status = error.status;
      answer = JSON.stringify(error);
    }
    // What Stripe did stays done whatever happens to this answer: its events go out once the exchange ends.
    res.once('close', () => this.deliverInBackground(followUp));
    await this.hook?.({ method, path: url.pathname, idempotencyKey, params, status });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'request-id': requestId,
      'stripe-version': headerValue(req.headers['stripe-version']) ?? Stripe.API_VERSION,
    };
    if (idempotencyKey !== null) headers['idempotency-key'] = idempotencyKey;
    if (replayed) headers['idempotent-replayed'] = 'true';
    res.writeHead(status, headers).end(answer);
  }

  private authenticate(authorization: string | null): void {
    if (authorization === null) {
      throw new StripeFailure(401, 'invalid_request_error', 'You did not provide an API key. Provide it in the Authorization header (Authorization: Bearer YOUR_SECRET_KEY).', undefined, undefined, false);
    }
    const presented = /^Bearer (.+)$/.exec(authorization)?.[1];
    if (presented !== this.apiKey) throw new StripeFailure(401, 'invalid_request_error', 'Invalid API Key provided.', undefined, undefined, false);
  }

  private route(method: string, path: string, params: Params, requestId: string, idempotencyKey: string | null): ApiResult {
    for (const route of this.routes) {
      const match = route.pattern.exec(path);
      if (route.method === method && match) {
        return route.handle({ params: new ParamReader(params), id: decodeURIComponent(match[1] ?? ''), requestId, idempotencyKey });
      }
    }
    throw new StripeFailure(404, 'invalid_request_error', `Unrecognized request URL (${method}: ${path}). The fake Stripe implements only what billing calls.`, undefined, undefined, false);
  }

  private async handlePage(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const { status, html, location } = await this.page(req, url);
    if (location !== undefined) res.writeHead(303, { location }).end();
    else res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' }).end(html);
  }

  /** The hosted pages: a checkout session's (GET, and POST per button) and a portal session's. */
  private async page(req: IncomingMessage, url: URL): Promise<{ status: number; html?: string; location?: string }> {
    const checkout = /^\/checkout\/([^/]+)(?:\/([a-z-]+))?$/.exec(url.pathname);
    const portal = /^\/portal\/([^/]+)$/.exec(url.pathname);
    if (checkout) {
      const session = this.sessionMap.get(decodeURIComponent(checkout[1]!));
      const action = checkout[2];
      if (!session) return { status: 404, html: problemPage('No such checkout session.') };
      if (req.method === 'GET' && action === undefined) return { status: 200, html: checkoutPage(session, this.isProcessing(session)) };
      if (req.method === 'POST' && action !== undefined && isCheckoutAction(action)) {
        await readBody(req);
        try {
          const next = await this.runCheckoutAction(session, action);
          return { status: 303, location: next ?? `/checkout/${encodeURIComponent(session.id)}` };
        } catch (error) {
          return { status: 409, html: problemPage(error instanceof Error ? error.message : String(error)) };
        }
      }
    }
    if (portal && req.method === 'GET') {
      const session = this.portalMap.get(decodeURIComponent(portal[1]!));
      return session ? { status: 200, html: portalPage(session) } : { status: 404, html: problemPage('No such portal session.') };
    }
    return { status: 404, html: problemPage('Not found.') };
  }

  private isProcessing(session: FakeCheckoutSession): boolean {
    return session.payment_intent !== null && this.intentMap.get(session.payment_intent)?.status === 'processing';
  }

  /** Runs a checkout page's button; answers where the browser goes next (null: back to the page). */
  private async runCheckoutAction(session: FakeCheckoutSession, action: CheckoutAction): Promise<string | null> {
    switch (action) {
      case 'pay':
        await this.completeCheckout(session.id);
        return successRedirect(session);
      case 'pay-later':
        await this.completeCheckout(session.id, { paid: false });
        return null;
      case 'async-succeeded':
        await this.asyncPaymentSucceeded(session.id);
        return successRedirect(session);
      case 'async-failed':
        await this.asyncPaymentFailed(session.id);
        return null;
      case 'expire':
        await this.expireCheckout(session.id);
        return null;
      case 'cancel':
        return session.cancel_url;
      default: {
        const unknown: never = action;
        throw new Error(`unknown checkout action ${String(unknown)}`);
      }
    }
  }
}

function headerValue(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new StripeFailure(413, 'invalid_request_error', 'Request body too large.', undefined, undefined, false);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts a fake of the Stripe API on 127.0.0.1 (the package README says what it implements). */
export async function startFakeStripe(options: FakeStripeOptions = {}): Promise<FakeStripe> {
  const fake = new FakeStripeServer(options);
  await fake.listen(options.port ?? 0);
  return fake;
}
