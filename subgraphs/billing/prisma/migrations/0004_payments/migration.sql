-- billing: payments with Stripe (issue 18). Customers top up their balance
-- through Stripe Checkout; Stripe's webhooks are verified, stored once per
-- event id and processed by a worker with retries; refunds and disputes are
-- recorded and posted to the ledger.

CREATE TYPE "PaymentSessionStatus" AS ENUM ('initiated', 'checkout_completed', 'credited', 'failed_reconcile', 'payment_failed', 'expired');
CREATE TYPE "StripeEventStatus" AS ENUM ('pending', 'processed', 'dead');
CREATE TYPE "RefundStatus" AS ENUM ('requested', 'submitted', 'refunded', 'posted', 'failed');
CREATE TYPE "DisputeStatus" AS ENUM ('held', 'won', 'lost');

-- The Stripe customer of an organization, created once (Stripe idempotency key per organization).
CREATE TABLE "payment_customers" (
    "organization_id" UUID NOT NULL,
    "stripe_customer_id" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "payment_customers_pkey" PRIMARY KEY ("organization_id")
);
CREATE UNIQUE INDEX "payment_customers_stripe_customer_id_key" ON "payment_customers" ("stripe_customer_id");

-- A top-up through Stripe Checkout. Its id is derived from (organization,
-- idempotency key), and so is the idempotency key Stripe was called with, so
-- a retry after a crash between Stripe's answer and this insert finds the
-- same Stripe session instead of creating a second payable one.
CREATE TABLE "payment_sessions" (
    "id" UUID NOT NULL,
    "organization_id" UUID NOT NULL,
    "amount" BIGINT NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "status" "PaymentSessionStatus" NOT NULL DEFAULT 'initiated',
    "idempotency_key" TEXT NOT NULL,
    "stripe_session_id" TEXT NOT NULL,
    "stripe_customer_id" TEXT NOT NULL,
    "stripe_payment_intent_id" TEXT,
    "url" TEXT,
    -- Stripe's payment_status and amount_total as last reported (completion, async result, reconcile).
    "payment_status" TEXT,
    "amount_received" BIGINT,
    "currency_received" CHAR(3),
    -- The credit's posting (payment:<id>); set with `credited`.
    "posting_id" TEXT,
    "failure_reason" TEXT,
    "created_by" JSONB NOT NULL,
    "correlation_id" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3),
    "completed_at" TIMESTAMPTZ(3),
    -- When the credit was posted: the refund window counts from here.
    "credited_at" TIMESTAMPTZ(3),
    CONSTRAINT "payment_sessions_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "payment_sessions_amount_check" CHECK ("amount" > 0)
);
CREATE UNIQUE INDEX "payment_sessions_organization_id_idempotency_key_key" ON "payment_sessions" ("organization_id", "idempotency_key");
CREATE UNIQUE INDEX "payment_sessions_stripe_session_id_key" ON "payment_sessions" ("stripe_session_id");
CREATE INDEX "payment_sessions_stripe_payment_intent_id_idx" ON "payment_sessions" ("stripe_payment_intent_id");
CREATE INDEX "payment_sessions_organization_id_created_at_idx" ON "payment_sessions" ("organization_id", "created_at");
CREATE INDEX "payment_sessions_status_updated_at_idx" ON "payment_sessions" ("status", "updated_at");

-- Every Stripe event whose signature verified, once per Stripe event id,
-- stored before the webhook is answered. The worker processes pending ones
-- with backoff; one that keeps failing becomes `dead` (finance sees it). An
-- event billing cannot match (an unknown session) is kept and flagged.
CREATE TABLE "stripe_events" (
    "id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "livemode" BOOLEAN NOT NULL DEFAULT false,
    "stripe_created_at" TIMESTAMPTZ(3) NOT NULL,
    "payload" JSONB NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "status" "StripeEventStatus" NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_error" TEXT,
    "processed_at" TIMESTAMPTZ(3),
    "flagged" BOOLEAN NOT NULL DEFAULT false,
    "flag_reason" TEXT,
    "organization_id" UUID,
    "payment_session_id" UUID,
    "correlation_id" TEXT NOT NULL,
    CONSTRAINT "stripe_events_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "stripe_events_pending_idx" ON "stripe_events" ("next_attempt_at") WHERE "status" = 'pending';
CREATE INDEX "stripe_events_status_received_at_idx" ON "stripe_events" ("status", "received_at");
CREATE INDEX "stripe_events_flagged_received_at_idx" ON "stripe_events" ("received_at") WHERE "flagged";

-- A refund: started by a platform admin (`platform`) or first seen in
-- Stripe's charge.refunded (`stripe`, refunded outside the platform). Its
-- posting id is refund:<stripe refund id>, so our refund and its later
-- webhook post once between them.
CREATE TABLE "refund_requests" (
    "id" UUID NOT NULL,
    "organization_id" UUID NOT NULL,
    "payment_session_id" UUID NOT NULL,
    "amount" BIGINT NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "status" "RefundStatus" NOT NULL DEFAULT 'requested',
    "origin" TEXT NOT NULL,
    "idempotency_key" TEXT,
    "stripe_refund_id" TEXT,
    "reason" TEXT,
    "requested_by" JSONB,
    "correlation_id" TEXT NOT NULL,
    "posting_id" TEXT,
    "failure_reason" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "submitted_at" TIMESTAMPTZ(3),
    "refunded_at" TIMESTAMPTZ(3),
    "posted_at" TIMESTAMPTZ(3),
    CONSTRAINT "refund_requests_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "refund_requests_amount_check" CHECK ("amount" > 0),
    CONSTRAINT "refund_requests_origin_check" CHECK ("origin" IN ('platform', 'stripe')),
    CONSTRAINT "refund_requests_payment_session_id_fkey" FOREIGN KEY ("payment_session_id") REFERENCES "payment_sessions" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "refund_requests_payment_session_id_idempotency_key_key" ON "refund_requests" ("payment_session_id", "idempotency_key");
CREATE UNIQUE INDEX "refund_requests_stripe_refund_id_key" ON "refund_requests" ("stripe_refund_id");
CREATE INDEX "refund_requests_organization_id_created_at_idx" ON "refund_requests" ("organization_id", "created_at");

-- A dispute (chargeback) on a payment: its amount is held in the
-- organization's disputes-held account until it closes, then returned (won)
-- or booked as lost.
CREATE TABLE "payment_disputes" (
    "id" TEXT NOT NULL,
    "organization_id" UUID NOT NULL,
    "payment_session_id" UUID NOT NULL,
    "stripe_charge_id" TEXT,
    "amount" BIGINT NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "status" "DisputeStatus" NOT NULL DEFAULT 'held',
    "reason" TEXT,
    "hold_posting_id" TEXT NOT NULL,
    "close_posting_id" TEXT,
    "opened_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "closed_at" TIMESTAMPTZ(3),
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "payment_disputes_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "payment_disputes_amount_check" CHECK ("amount" > 0),
    CONSTRAINT "payment_disputes_payment_session_id_fkey" FOREIGN KEY ("payment_session_id") REFERENCES "payment_sessions" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
CREATE INDEX "payment_disputes_organization_id_opened_at_idx" ON "payment_disputes" ("organization_id", "opened_at");
