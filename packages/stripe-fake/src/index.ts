export {
  startFakeStripe,
  type DeliverOptions,
  type FakeStripe,
  type FakeStripeCall,
  type FakeStripeHook,
  type FakeStripeOptions,
  type WebhookDelivery,
} from './fake-stripe.js';
export type {
  FakeCharge,
  FakeCheckoutSession,
  FakeCustomer,
  FakeDispute,
  FakePaymentIntent,
  FakePortalSession,
  FakeRefund,
  StripeEventJson,
  StripeList,
} from './objects.js';
