-- billing: usage to money (issue 17). Products emit usage events; billing
-- ingests them once by event id, rates them asynchronously into usage lines,
-- posts the lines' whole minor units per organization, project and month
-- (ARCHITECTURE.md, Decisions: Money, remainder rule), meters long-lived
-- resources in windows anchored at their opening, announces low and depleted
-- balances and reconciles what products reported against what was ingested,
-- rated and posted.

-- Every usage event billing received, accepted or rejected, once per event id.
-- A rejected event is kept with its reason and its envelope; an accepted one
-- carries what rating needs, decided at ingestion: the price in force at its
-- time (never reinterpreted later) and the policy values of that moment.
CREATE TABLE "usage_events" (
    "event_id" UUID NOT NULL,
    -- sha256 of the event's canonical content: the same id with other content is a conflict.
    "fingerprint" TEXT NOT NULL,
    "event_type" TEXT NOT NULL,
    "product" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "rejection_reason" TEXT,
    "rejection_detail" TEXT,
    "organization_id" UUID,
    "department_id" UUID,
    "project_id" UUID,
    "actor_type" TEXT,
    "actor_id" TEXT,
    "api_key_id" TEXT,
    "usage_id" UUID,
    "resource_type" TEXT,
    "resource_id" TEXT,
    "unit_id" TEXT,
    "unit_version" INTEGER,
    -- Point events: base units consumed. Intervals: base units accrued per second (GPUs held, instances).
    "quantity" BIGINT,
    -- Point: when it happened; opened: openedAt; closed: closedAt.
    "occurred_at" TIMESTAMPTZ(3),
    "opened_at" TIMESTAMPTZ(3),
    "currency" CHAR(3),
    "price_book_id" UUID,
    "price_book_version" INTEGER,
    "unit_price" DECIMAL(30,12),
    "base_per_unit" INTEGER,
    -- Policy at ingestion: the window length an opening snapshots, and the organization's low-balance threshold.
    "window_seconds" INTEGER,
    "low_balance_threshold" BIGINT,
    "correlation_id" TEXT,
    -- The envelope as received, kept for rejected events only.
    "envelope" JSONB,
    "batch_id" UUID NOT NULL,
    -- When JetStream stored the message, and when billing committed it: ingest lag is the difference.
    "published_at" TIMESTAMPTZ(3),
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "usage_events_pkey" PRIMARY KEY ("event_id"),
    CONSTRAINT "usage_events_kind_check" CHECK ("kind" IN ('recorded', 'opened', 'closed')),
    CONSTRAINT "usage_events_status_check" CHECK ("status" IN ('accepted', 'rejected')),
    CONSTRAINT "usage_events_reason_check" CHECK (("status" = 'rejected') = ("rejection_reason" IS NOT NULL)),
    CONSTRAINT "usage_events_accepted_check" CHECK (
        "status" = 'rejected' OR (
            "organization_id" IS NOT NULL AND "department_id" IS NOT NULL AND "project_id" IS NOT NULL
            AND "usage_id" IS NOT NULL AND "unit_id" IS NOT NULL AND "unit_version" IS NOT NULL
            AND "quantity" IS NOT NULL AND "quantity" > 0 AND "occurred_at" IS NOT NULL
            AND "currency" IS NOT NULL AND "price_book_id" IS NOT NULL AND "unit_price" IS NOT NULL AND "base_per_unit" IS NOT NULL
        )
    ),
    CONSTRAINT "usage_events_opened_check" CHECK ("status" = 'rejected' OR "kind" <> 'opened' OR "window_seconds" > 0)
);
CREATE INDEX "usage_events_batch_id_idx" ON "usage_events" ("batch_id");
CREATE INDEX "usage_events_organization_id_occurred_at_idx" ON "usage_events" ("organization_id", "occurred_at", "event_id");
CREATE INDEX "usage_events_product_occurred_at_idx" ON "usage_events" ("product", "occurred_at");
CREATE INDEX "usage_events_usage_id_idx" ON "usage_events" ("usage_id");
CREATE INDEX "usage_events_rejected_idx" ON "usage_events" ("organization_id", "received_at") WHERE "status" = 'rejected';

-- An event id that came again with other content: never applied, kept for finance.
CREATE TABLE "usage_conflicts" (
    "event_id" UUID NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "organization_id" UUID,
    "envelope" JSONB NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "usage_conflicts_pkey" PRIMARY KEY ("event_id", "fingerprint")
);
CREATE INDEX "usage_conflicts_organization_id_received_at_idx" ON "usage_conflicts" ("organization_id", "received_at");

-- One ingestion transaction's events: a rating job rates a batch; a batch
-- never marked rated is enqueued again by the sweeper.
CREATE TABLE "usage_batches" (
    "id" UUID NOT NULL,
    "accepted" INTEGER NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "rated_at" TIMESTAMPTZ(3),
    -- Its rating job used up its attempts (a dead letter): the sweeper leaves it to billing:reconcile.
    "failed_at" TIMESTAMPTZ(3),
    CONSTRAINT "usage_batches_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "usage_batches_unrated_idx" ON "usage_batches" ("received_at") WHERE "rated_at" IS NULL AND "failed_at" IS NULL;
CREATE INDEX "usage_batches_received_at_idx" ON "usage_batches" ("received_at");

-- An accepted event rated: written once, in the transaction that wrote its
-- lines and posted them, so a second worker finds it taken.
CREATE TABLE "usage_ratings" (
    "event_id" UUID NOT NULL,
    "batch_id" UUID NOT NULL,
    "organization_id" UUID NOT NULL,
    -- The remainder-chain step its lines went into (usage_postings.id); none for an opening.
    "usage_posting_id" TEXT,
    "rated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "usage_ratings_pkey" PRIMARY KEY ("event_id")
);

-- A long-lived resource's interval: what billing snapshotted when it opened.
CREATE TABLE "usage_intervals" (
    "usage_id" UUID NOT NULL,
    "product" TEXT NOT NULL,
    "organization_id" UUID NOT NULL,
    "department_id" UUID NOT NULL,
    "project_id" UUID NOT NULL,
    "api_key_id" TEXT,
    "resource_type" TEXT NOT NULL,
    "resource_id" TEXT NOT NULL,
    "unit_id" TEXT NOT NULL,
    "unit_version" INTEGER NOT NULL,
    "quantity_per_second" BIGINT NOT NULL,
    "opened_at" TIMESTAMPTZ(3) NOT NULL,
    "closed_at" TIMESTAMPTZ(3),
    "window_seconds" INTEGER NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "price_book_id" UUID NOT NULL,
    "price_book_version" INTEGER NOT NULL,
    "unit_price" DECIMAL(30,12) NOT NULL,
    "base_per_unit" INTEGER NOT NULL,
    "opened_event_id" UUID NOT NULL,
    "closed_event_id" UUID,
    -- Windows [0, next_window) have been billed in full (the accrual's cursor; the lines are the record).
    "next_window" INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT "usage_intervals_pkey" PRIMARY KEY ("usage_id"),
    CONSTRAINT "usage_intervals_window_seconds_check" CHECK ("window_seconds" > 0),
    CONSTRAINT "usage_intervals_quantity_per_second_check" CHECK ("quantity_per_second" > 0),
    CONSTRAINT "usage_intervals_closed_check" CHECK ("closed_at" IS NULL OR "closed_at" >= "opened_at")
);
CREATE INDEX "usage_intervals_open_idx" ON "usage_intervals" ("organization_id") WHERE "closed_at" IS NULL;

-- Each remainder-chain step: the exact running sum of an organization's
-- project's month, the whole minor units posted for it so far, and what this
-- step posted (floor(exact) - posted before). Append-only; the newest row of
-- a chain is its state, so no fractional counter is ever changed.
CREATE TABLE "usage_postings" (
    "id" TEXT NOT NULL,
    "seq" BIGSERIAL NOT NULL,
    "organization_id" UUID NOT NULL,
    "project_id" UUID NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "period" DATE NOT NULL,
    "step" INTEGER NOT NULL,
    -- Exact amounts are integers in units of 1 / (10^12 * 3600) minor unit (see domain/rating-amounts.ts).
    "exact_units" NUMERIC(60,0) NOT NULL,
    "posted" BIGINT NOT NULL,
    "delta" BIGINT NOT NULL,
    "lines" INTEGER NOT NULL,
    -- The ledger posting when delta is not 0 (then id = that posting's id).
    "ledger_posting_id" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "usage_postings_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "usage_postings_step_check" CHECK ("step" > 0),
    CONSTRAINT "usage_postings_ledger_check" CHECK (("delta" = 0) = ("ledger_posting_id" IS NULL))
);
CREATE UNIQUE INDEX "usage_postings_chain_key" ON "usage_postings" ("organization_id", "project_id", "currency", "period", "step");
CREATE UNIQUE INDEX "usage_postings_seq_key" ON "usage_postings" ("seq");

-- Rated usage: one line per point event, per billed interval window and per
-- close adjustment, with the unit version and price-book version it used.
CREATE TABLE "usage_lines" (
    "id" BIGSERIAL NOT NULL,
    -- 'event:<event id>', 'window:<usage id>:<index>', 'window:<usage id>:<index>:close'
    "line_key" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "event_id" UUID NOT NULL,
    "usage_id" UUID NOT NULL,
    "window_index" INTEGER,
    "window_start" TIMESTAMPTZ(3),
    "window_end" TIMESTAMPTZ(3),
    "organization_id" UUID NOT NULL,
    "department_id" UUID NOT NULL,
    "project_id" UUID NOT NULL,
    "api_key_id" TEXT,
    "product" TEXT NOT NULL,
    "resource_type" TEXT NOT NULL,
    "resource_id" TEXT NOT NULL,
    "unit_id" TEXT NOT NULL,
    "unit_version" INTEGER NOT NULL,
    -- Base units; negative for a close adjustment that takes back what was billed past the close.
    "quantity" BIGINT NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "price_book_id" UUID NOT NULL,
    "price_book_version" INTEGER NOT NULL,
    "unit_price" DECIMAL(30,12) NOT NULL,
    "exact_units" NUMERIC(60,0) NOT NULL,
    "period" DATE NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "usage_posting_id" TEXT NOT NULL,
    "rated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "usage_lines_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "usage_lines_kind_check" CHECK ("kind" IN ('point', 'window', 'close_adjustment')),
    CONSTRAINT "usage_lines_usage_posting_id_fkey" FOREIGN KEY ("usage_posting_id") REFERENCES "usage_postings" ("id") ON DELETE RESTRICT ON UPDATE RESTRICT
);
CREATE UNIQUE INDEX "usage_lines_line_key_key" ON "usage_lines" ("line_key");
CREATE INDEX "usage_lines_organization_id_id_idx" ON "usage_lines" ("organization_id", "id");
CREATE INDEX "usage_lines_usage_id_idx" ON "usage_lines" ("usage_id");
CREATE INDEX "usage_lines_usage_posting_id_idx" ON "usage_lines" ("usage_posting_id");

CREATE TRIGGER "usage_postings_append_only" BEFORE UPDATE OR DELETE ON "usage_postings" FOR EACH ROW EXECUTE FUNCTION "refuse_ledger_change"();
CREATE TRIGGER "usage_postings_no_truncate" BEFORE TRUNCATE ON "usage_postings" FOR EACH STATEMENT EXECUTE FUNCTION "refuse_ledger_change"();
CREATE TRIGGER "usage_lines_append_only" BEFORE UPDATE OR DELETE ON "usage_lines" FOR EACH ROW EXECUTE FUNCTION "refuse_ledger_change"();
CREATE TRIGGER "usage_lines_no_truncate" BEFORE TRUNCATE ON "usage_lines" FOR EACH STATEMENT EXECUTE FUNCTION "refuse_ledger_change"();

-- A month's chain closed: its remainder below one minor unit dropped, and recorded.
CREATE TABLE "usage_period_closes" (
    "organization_id" UUID NOT NULL,
    "project_id" UUID NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "period" DATE NOT NULL,
    "exact_units" NUMERIC(60,0) NOT NULL,
    "posted" BIGINT NOT NULL,
    "dropped_units" NUMERIC(60,0) NOT NULL,
    "closed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "usage_period_closes_pkey" PRIMARY KEY ("organization_id", "project_id", "currency", "period")
);

-- Low-balance and depleted announcements: one per downward crossing (and a
-- low reminder after 24 h), decided under the organization's funds lock.
CREATE TABLE "balance_alerts" (
    "organization_id" UUID NOT NULL,
    "low" BOOLEAN NOT NULL DEFAULT false,
    "low_announced_at" TIMESTAMPTZ(3),
    "depleted" BOOLEAN NOT NULL DEFAULT false,
    "depleted_announced_at" TIMESTAMPTZ(3),
    -- Announcements so far: each one is the next version of the organization's balance aggregate.
    "version" INTEGER NOT NULL DEFAULT 0,
    -- The threshold usage last brought (policy at ingestion): postings without usage are checked against it.
    "threshold" BIGINT,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "balance_alerts_pkey" PRIMARY KEY ("organization_id")
);

-- What a product reported for a window (usage.window_summary); a recount supersedes.
CREATE TABLE "usage_window_summaries" (
    "product" TEXT NOT NULL,
    "organization_id" UUID NOT NULL,
    "unit_id" TEXT NOT NULL,
    "window_start" TIMESTAMPTZ(3) NOT NULL,
    "window_end" TIMESTAMPTZ(3) NOT NULL,
    "event_count" INTEGER NOT NULL,
    "quantity" NUMERIC(30,0) NOT NULL,
    "recount" INTEGER NOT NULL,
    "event_id" UUID NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "usage_window_summaries_pkey" PRIMARY KEY ("product", "organization_id", "unit_id", "window_start")
);
CREATE INDEX "usage_window_summaries_received_at_idx" ON "usage_window_summaries" ("received_at");
CREATE INDEX "usage_window_summaries_window_end_idx" ON "usage_window_summaries" ("window_end");

-- A reconciliation window's last count: reported, ingested, rated, posted, and whether they drift.
CREATE TABLE "usage_reconciliations" (
    "product" TEXT NOT NULL,
    "organization_id" UUID NOT NULL,
    "unit_id" TEXT NOT NULL,
    "window_start" TIMESTAMPTZ(3) NOT NULL,
    "window_end" TIMESTAMPTZ(3) NOT NULL,
    "reported_count" INTEGER,
    "reported_quantity" NUMERIC(30,0),
    "ingested_count" INTEGER NOT NULL,
    "ingested_quantity" NUMERIC(30,0) NOT NULL,
    "rated_count" INTEGER NOT NULL,
    "posted_count" INTEGER NOT NULL,
    "drift" BOOLEAN NOT NULL,
    "drift_reasons" TEXT[] NOT NULL DEFAULT '{}',
    "checked_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "usage_reconciliations_pkey" PRIMARY KEY ("product", "organization_id", "unit_id", "window_start")
);
CREATE INDEX "usage_reconciliations_drift_idx" ON "usage_reconciliations" ("window_start") WHERE "drift";
CREATE INDEX "usage_reconciliations_organization_id_window_start_idx" ON "usage_reconciliations" ("organization_id", "window_start");

-- Analytics read only these: usage per hour and dimension, written in the
-- rating transaction. API keys are kept; users are not (PII stays in raw usage).
CREATE TABLE "usage_rollups" (
    "hour" TIMESTAMPTZ(3) NOT NULL,
    "organization_id" UUID NOT NULL,
    "department_id" UUID NOT NULL,
    "project_id" UUID NOT NULL,
    -- '' when the usage was not made with an API key.
    "api_key_id" TEXT NOT NULL,
    "product" TEXT NOT NULL,
    "resource_type" TEXT NOT NULL,
    "resource_id" TEXT NOT NULL,
    "unit_id" TEXT NOT NULL,
    "unit_version" INTEGER NOT NULL,
    "price_book_version" INTEGER NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "lines" BIGINT NOT NULL,
    "quantity" NUMERIC(30,0) NOT NULL,
    "exact_units" NUMERIC(60,0) NOT NULL,
    CONSTRAINT "usage_rollups_pkey" PRIMARY KEY ("hour", "organization_id", "department_id", "project_id", "api_key_id", "product", "resource_type", "resource_id", "unit_id", "unit_version", "price_book_version", "currency")
);
CREATE INDEX "usage_rollups_organization_id_hour_idx" ON "usage_rollups" ("organization_id", "hour");

-- Raw usage compaction per month: gates passed (audit review is recorded by an
-- admin) and what was removed.
CREATE TABLE "usage_compactions" (
    "period" DATE NOT NULL,
    "audit_reviewed_at" TIMESTAMPTZ(3),
    "audit_reviewed_by" JSONB,
    "compacted_at" TIMESTAMPTZ(3),
    "events_removed" BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT "usage_compactions_pkey" PRIMARY KEY ("period")
);

-- Append-only against the app role, as the ledger.
DO $$
DECLARE
    grantee_role text;
    ledger_table text;
BEGIN
    FOREACH ledger_table IN ARRAY ARRAY['usage_postings', 'usage_lines'] LOOP
        FOR grantee_role IN
            SELECT DISTINCT g.grantee FROM information_schema.role_table_grants g
            WHERE g.table_schema = current_schema() AND g.table_name = ledger_table AND g.grantee <> current_user
        LOOP
            EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %I FROM %I', ledger_table, grantee_role);
        END LOOP;
    END LOOP;
END;
$$;
