import { systemClock } from '@aifactory/clock';
import type { Logger } from '@aifactory/logging';
import type { BillingConfig } from './config.js';
import { AccountStore } from './data/accounts.js';
import { BalanceStore } from './data/balances.js';
import { HierarchyStore } from './data/hierarchy.js';
import { LedgerHistoryStore } from './data/ledger-history.js';
import { PriceBookStore } from './data/price-books.js';
import { UsageCompactionStore } from './data/usage-compaction-store.js';
import { UsageReadsStore } from './data/usage-reads-store.js';
import { UsageReconciliationStore } from './data/usage-reconciliation-store.js';
import type { BillingDatabase } from './data/database.js';
import { AccountService } from './domain/accounts.js';
import { alertingLedger } from './domain/alerting-ledger.js';
import { Ledger } from './domain/ledger.js';
import { AdminCredit } from './domain/admin-credit.js';
import { Balances } from './domain/balances.js';
import { LedgerHistory } from './domain/ledger-history.js';
import { PriceBooks } from './domain/price-books.js';
import { PromotionalCredit } from './domain/promotional-credit.js';
import { Reservations } from './domain/reservations.js';
import { BillingStatus } from './domain/service-status.js';
import { UsageCompaction } from './domain/usage-compaction.js';
import { UsageDriftStatus } from './domain/usage-drift-status.js';
import { UsageReads } from './domain/usage-reads.js';
import { UsageReconciliation } from './domain/usage-reconciliation.js';
import { BalanceAlerts } from './domain/balance-alerts.js';
import { UsageRating } from './domain/usage-rating.js';
import { PaymentSessionStore } from './data/payment-sessions-store.js';
import { StripeEventsStore } from './data/stripe-events-store.js';
import { Checkout } from './domain/checkout.js';
import { Disputes, disputeEventHandlers } from './domain/disputes.js';
import type { PaymentProvider } from './domain/payment-provider.js';
import { PaymentMetrics } from './domain/payment-metrics.js';
import { PaymentSettlement } from './domain/payment-settlement.js';
import { Refunds, refundEventHandlers } from './domain/refunds.js';
import { StripeEventProcessor } from './domain/stripe-event-processing.js';
import { StripePaymentProvider } from './stripe/stripe-payment-provider.js';

/** billing's domain services, built once per process; resolvers, routes and workers call them. */
export interface BillingServices {
  database: BillingDatabase;
  accounts: AccountService;
  ledger: Ledger;
  reservations: Reservations;
  promotionalCredit: PromotionalCredit;
  /** billing's status (degraded by a ledger mismatch), announced as platform.status.billing.changed. */
  status: BillingStatus;
  /** Balances and per-project spend (the balance read model). */
  balances: Balances;
  /** An organization's transfers, postings and reservations. */
  ledgerHistory: LedgerHistory;
  /** The usage-unit registry and price books. */
  priceBooks: PriceBooks;
  /** Platform admins' credits (creditBalance). */
  adminCredit: AdminCredit;
  /** Rates ingested usage into usage lines and posts them (rating jobs, accrual of open intervals, reconcile). */
  usageRating: UsageRating;
  /** Usage windows counted (reported, ingested, rated, posted); billing is degraded while any drifts. */
  usageReconciliation: UsageReconciliation;
  /** An organization's usage: raw events, rated lines, refusals, reconciliation, rollups, the CSV export. */
  usageReads: UsageReads;
  /** Raw-usage compaction per month, behind its gates (recordUsageAuditReview, compactUsage). */
  usageCompaction: UsageCompaction;
  /** Stripe, behind billing's payment provider interface. */
  paymentProvider: PaymentProvider;
  /** Stripe Checkout top-ups and the customer portal (createCheckoutSession, createBillingPortalSession). */
  checkout: Checkout;
  /** Payment sessions' state machine: credits, reconciliation, finance's reads. */
  paymentSettlement: PaymentSettlement;
  /** Refunds of Stripe payments (refundPayment, charge.refunded). */
  refunds: Refunds;
  /** Disputes of Stripe payments (charge.dispute.created / closed). */
  disputes: Disputes;
  /** Stored Stripe webhook events and their processing (retries, dead letters, finance's list). */
  stripeEvents: StripeEventProcessor;
  /** Webhook lag, Stripe reachability and dead letters on /metrics. */
  paymentMetrics: PaymentMetrics;
}

export function createBillingServices(database: BillingDatabase, config: BillingConfig, _logger: Logger, stripeApiKey: () => string): BillingServices {
  const subjectPrefix = config.EVENT_SUBJECT_PREFIX;
  const balanceAlerts = new BalanceAlerts({ subjectPrefix });
  const ledger = alertingLedger(database.pool, balanceAlerts, systemClock);
  const promotionalCredit = new PromotionalCredit(database.pool, ledger);
  const balanceStore = new BalanceStore(database.pool);
  const hierarchy = new HierarchyStore();
  const historyStore = new LedgerHistoryStore(database.pool);
  const reconciliationStore = new UsageReconciliationStore(database.pool);
  const usageReconciliation = new UsageReconciliation(reconciliationStore, new UsageDriftStatus(database.pool, reconciliationStore, { subjectPrefix }), {
    graceMs: config.BILLING_RECONCILE_GRACE_MS,
  });
  const stripeEventsStore = new StripeEventsStore();
  // Before the provider, so its first calls' reachability reaches the gauge.
  const paymentMetrics = new PaymentMetrics(database.pool, stripeEventsStore, systemClock);
  const paymentProvider = new StripePaymentProvider({
    apiKey: stripeApiKey,
    apiUrl: config.STRIPE_API_URL,
    timeoutMs: config.STRIPE_TIMEOUT_MS,
    onReachability: (reachable) => paymentMetrics.stripeReachable(reachable),
  });
  const paymentSessions = new PaymentSessionStore(database.pool);
  const paymentSettlement = new PaymentSettlement(database.pool, ledger, paymentProvider, paymentSessions, { subjectPrefix });
  const refunds = new Refunds(database.pool, ledger, paymentProvider, { subjectPrefix, clock: systemClock });
  const disputes = new Disputes(database.pool, ledger);
  const stripeEvents = new StripeEventProcessor(
    database.pool,
    stripeEventsStore,
    { ...paymentSettlement.handlers, ...refundEventHandlers(refunds), ...disputeEventHandlers(disputes) },
    { maxAttempts: config.BILLING_WEBHOOK_MAX_ATTEMPTS, retryBaseMs: config.BILLING_WEBHOOK_RETRY_BASE_MS, subjectPrefix },
    paymentMetrics,
    systemClock,
  );
  return {
    database,
    accounts: new AccountService(new AccountStore(database.prisma, database.pool)),
    ledger,
    reservations: new Reservations(database.pool, ledger),
    promotionalCredit,
    status: new BillingStatus(database.pool, { subjectPrefix: config.EVENT_SUBJECT_PREFIX }),
    balances: new Balances(balanceStore, hierarchy, database.pool),
    ledgerHistory: new LedgerHistory(historyStore, hierarchy, database.pool),
    priceBooks: new PriceBooks(database.pool, new PriceBookStore(database.pool), { subjectPrefix, clock: systemClock }),
    adminCredit: new AdminCredit(database.pool, ledger, promotionalCredit, balanceStore, historyStore, { subjectPrefix }),
    usageRating: new UsageRating(database.pool, ledger, { balanceAlerts, clock: systemClock }),
    usageReconciliation,
    usageReads: new UsageReads(new UsageReadsStore(database.pool), hierarchy, database.pool),
    usageCompaction: new UsageCompaction(database.pool, new UsageCompactionStore(), usageReconciliation, { subjectPrefix }),
    paymentProvider,
    checkout: new Checkout(ledger, paymentProvider, paymentSessions, {
      successUrl: config.BILLING_CHECKOUT_SUCCESS_URL,
      cancelUrl: config.BILLING_CHECKOUT_CANCEL_URL,
      portalReturnUrl: config.BILLING_PORTAL_RETURN_URL,
    }),
    paymentSettlement,
    refunds,
    disputes,
    stripeEvents,
    paymentMetrics,
  };
}
