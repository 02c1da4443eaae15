-- billing: the ledger (ARCHITECTURE.md, Decisions: Money) and what sits right on it:
-- platform accounts, postings and their transfers, the balance read model,
-- budgets, reservations, promotional grants, the usage-unit and price-book
-- registries, billing's read model of iam's hierarchy and its consumer tables.

-- Platform accounts (one per kind and currency, no organization). The new
-- values are only compared as text below: Postgres refuses a new enum value
-- in the transaction that adds it.
ALTER TYPE "AccountKind" ADD VALUE 'revenue';
ALTER TYPE "AccountKind" ADD VALUE 'payment_clearing';
ALTER TYPE "AccountKind" ADD VALUE 'refunds';
ALTER TYPE "AccountKind" ADD VALUE 'promotions';

ALTER TABLE "accounts" ALTER COLUMN "organization_id" DROP NOT NULL;
ALTER TABLE "accounts" ADD CONSTRAINT "accounts_owner_check" CHECK (
    ("organization_id" IS NULL) = ("kind"::text IN ('revenue', 'payment_clearing', 'refunds', 'promotions'))
);
-- NULLS NOT DISTINCT: a platform account (no organization) is unique per kind and currency too.
DROP INDEX "accounts_organization_id_kind_currency_key";
CREATE UNIQUE INDEX "accounts_organization_id_kind_currency_key" ON "accounts" ("organization_id", "kind", "currency") NULLS NOT DISTINCT;
-- Transfers reference (account, currency), so a transfer in another currency than either account's is refused by the database.
CREATE UNIQUE INDEX "accounts_id_currency_key" ON "accounts" ("id", "currency");

-- A posting: one or more transfers written in one transaction, idempotent by its id.
CREATE TABLE "postings" (
    "id" TEXT NOT NULL,
    "seq" BIGSERIAL NOT NULL,
    "kind" TEXT NOT NULL,
    "organization_id" UUID,
    "department_id" UUID,
    "project_id" UUID,
    "currency" CHAR(3) NOT NULL,
    -- sha256 of the posting's canonical transfers: the same id with other transfers is a conflict.
    "fingerprint" TEXT NOT NULL,
    "description" TEXT,
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "actor" JSONB NOT NULL,
    "correlation_id" TEXT NOT NULL,
    -- Posted above its reservation, or anything else finance should look at.
    "flagged" BOOLEAN NOT NULL DEFAULT false,
    "posted_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "postings_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "postings_id_check" CHECK (char_length("id") BETWEEN 1 AND 200),
    CONSTRAINT "postings_kind_check" CHECK ("kind" ~ '^[a-z][a-z_]{0,62}$'),
    CONSTRAINT "postings_currency_check" CHECK ("currency" ~ '^[A-Z]{3}$')
);
CREATE UNIQUE INDEX "postings_seq_key" ON "postings" ("seq");
CREATE INDEX "postings_organization_id_seq_idx" ON "postings" ("organization_id", "seq");

-- TigerBeetle-style: every row moves a positive amount from one account to another in one currency.
CREATE TABLE "transfers" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "seq" BIGSERIAL NOT NULL,
    "posting_id" TEXT NOT NULL,
    "ordinal" SMALLINT NOT NULL,
    "debit_account_id" UUID NOT NULL,
    "credit_account_id" UUID NOT NULL,
    "amount" BIGINT NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "code" TEXT NOT NULL,
    "organization_id" UUID,
    "department_id" UUID,
    "project_id" UUID,
    "posted_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "transfers_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "transfers_amount_check" CHECK ("amount" > 0),
    CONSTRAINT "transfers_accounts_check" CHECK ("debit_account_id" <> "credit_account_id"),
    CONSTRAINT "transfers_ordinal_check" CHECK ("ordinal" >= 0),
    CONSTRAINT "transfers_code_check" CHECK ("code" ~ '^[a-z][a-z_]{0,62}$'),
    CONSTRAINT "transfers_posting_id_fkey" FOREIGN KEY ("posting_id") REFERENCES "postings" ("id") ON DELETE RESTRICT ON UPDATE RESTRICT,
    CONSTRAINT "transfers_debit_account_id_currency_fkey" FOREIGN KEY ("debit_account_id", "currency") REFERENCES "accounts" ("id", "currency") ON DELETE RESTRICT ON UPDATE RESTRICT,
    CONSTRAINT "transfers_credit_account_id_currency_fkey" FOREIGN KEY ("credit_account_id", "currency") REFERENCES "accounts" ("id", "currency") ON DELETE RESTRICT ON UPDATE RESTRICT
);
CREATE UNIQUE INDEX "transfers_seq_key" ON "transfers" ("seq");
CREATE UNIQUE INDEX "transfers_posting_id_ordinal_key" ON "transfers" ("posting_id", "ordinal");
CREATE INDEX "transfers_debit_account_id_seq_idx" ON "transfers" ("debit_account_id", "seq");
CREATE INDEX "transfers_credit_account_id_seq_idx" ON "transfers" ("credit_account_id", "seq");
CREATE INDEX "transfers_organization_id_seq_idx" ON "transfers" ("organization_id", "seq");
CREATE INDEX "transfers_project_id_seq_idx" ON "transfers" ("project_id", "seq");

-- Append-only against mistakes: even the owner cannot change or remove a posting or a transfer.
CREATE FUNCTION "refuse_ledger_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME USING ERRCODE = 'LDG01';
END;
$$;
CREATE TRIGGER "postings_append_only" BEFORE UPDATE OR DELETE ON "postings" FOR EACH ROW EXECUTE FUNCTION "refuse_ledger_change"();
CREATE TRIGGER "postings_no_truncate" BEFORE TRUNCATE ON "postings" FOR EACH STATEMENT EXECUTE FUNCTION "refuse_ledger_change"();
CREATE TRIGGER "transfers_append_only" BEFORE UPDATE OR DELETE ON "transfers" FOR EACH ROW EXECUTE FUNCTION "refuse_ledger_change"();
CREATE TRIGGER "transfers_no_truncate" BEFORE TRUNCATE ON "transfers" FOR EACH STATEMENT EXECUTE FUNCTION "refuse_ledger_change"();

-- Balances: the read model, updated in the transaction that writes the transfers.
-- Platform accounts take every organization's postings, so their balance is
-- spread over shards (one row per shard, summed on read) instead of one hot row.
CREATE TABLE "account_balances" (
    "account_id" UUID NOT NULL,
    "shard" SMALLINT NOT NULL DEFAULT 0,
    "debits_posted" BIGINT NOT NULL DEFAULT 0,
    "credits_posted" BIGINT NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "account_balances_pkey" PRIMARY KEY ("account_id", "shard"),
    CONSTRAINT "account_balances_shard_check" CHECK ("shard" BETWEEN 0 AND 63),
    CONSTRAINT "account_balances_posted_check" CHECK ("debits_posted" >= 0 AND "credits_posted" >= 0),
    CONSTRAINT "account_balances_account_id_fkey" FOREIGN KEY ("account_id") REFERENCES "accounts" ("id") ON DELETE RESTRICT ON UPDATE RESTRICT
);

-- What an organization may spend, in one row, so a reservation is one conditional
-- UPDATE: paid (its customer balance), promotional (its promotional credit),
-- reserved (open reservations). Kept with the transfers, proven by billing:verify.
CREATE TABLE "organization_funds" (
    "organization_id" UUID NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "paid" BIGINT NOT NULL DEFAULT 0,
    "promotional" BIGINT NOT NULL DEFAULT 0,
    "reserved" BIGINT NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "organization_funds_pkey" PRIMARY KEY ("organization_id"),
    CONSTRAINT "organization_funds_reserved_check" CHECK ("reserved" >= 0)
);

-- Spend and open reservations per budget pool (organization, department,
-- project) and calendar month (UTC); the limits come from policy
-- (billing.budget.monthly_spend) at the moment a reservation is made.
CREATE TABLE "budget_spend" (
    "pool_level" TEXT NOT NULL,
    "pool_id" UUID NOT NULL,
    "period" DATE NOT NULL,
    "organization_id" UUID NOT NULL,
    "spent" BIGINT NOT NULL DEFAULT 0,
    "reserved" BIGINT NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "budget_spend_pkey" PRIMARY KEY ("pool_level", "pool_id", "period"),
    CONSTRAINT "budget_spend_pool_level_check" CHECK ("pool_level" IN ('organization', 'department', 'project')),
    -- Spent may dip below zero: a correction in a later month reverses spend of an earlier one.
    CONSTRAINT "budget_spend_reserved_check" CHECK ("reserved" >= 0),
    CONSTRAINT "budget_spend_period_check" CHECK (extract(day FROM "period") = 1)
);
CREATE INDEX "budget_spend_organization_id_period_idx" ON "budget_spend" ("organization_id", "period");

-- Two-phase reservations (TigerBeetle's pending transfers): held in
-- organization_funds.reserved and budget_spend.reserved until posted, voided
-- or expired, each exactly once.
CREATE TYPE "ReservationStatus" AS ENUM ('pending', 'posted', 'voided', 'expired');

CREATE TABLE "reservations" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "seq" BIGSERIAL NOT NULL,
    "organization_id" UUID NOT NULL,
    "department_id" UUID NOT NULL,
    "project_id" UUID NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "amount" BIGINT NOT NULL,
    "period" DATE NOT NULL,
    "status" "ReservationStatus" NOT NULL DEFAULT 'pending',
    -- The service that reserved, and its key for this reservation: a retry returns the first answer.
    "caller" TEXT NOT NULL,
    "idempotency_key" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "description" TEXT,
    "actor" JSONB NOT NULL,
    "correlation_id" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "posted_amount" BIGINT,
    "over_reservation" BOOLEAN NOT NULL DEFAULT false,
    "posting_id" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "resolved_at" TIMESTAMPTZ(3),
    CONSTRAINT "reservations_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "reservations_amount_check" CHECK ("amount" > 0),
    CONSTRAINT "reservations_posted_amount_check" CHECK ("posted_amount" IS NULL OR "posted_amount" >= 0),
    CONSTRAINT "reservations_resolution_check" CHECK (("status" = 'pending') = ("resolved_at" IS NULL)),
    CONSTRAINT "reservations_posting_id_fkey" FOREIGN KEY ("posting_id") REFERENCES "postings" ("id") ON DELETE RESTRICT ON UPDATE RESTRICT
);
CREATE UNIQUE INDEX "reservations_seq_key" ON "reservations" ("seq");
CREATE UNIQUE INDEX "reservations_caller_idempotency_key_key" ON "reservations" ("caller", "idempotency_key");
CREATE INDEX "reservations_organization_id_seq_idx" ON "reservations" ("organization_id", "seq");
CREATE INDEX "reservations_status_expires_at_idx" ON "reservations" ("status", "expires_at");

-- Promotional credit, granted with an expiry (policy). A charge draws promotional
-- credit from the grants, earliest expiry first (remaining, under the funds row's lock);
-- expiring a grant posts its remaining amount back.
CREATE TABLE "promotional_grants" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "organization_id" UUID NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "amount" BIGINT NOT NULL,
    "remaining" BIGINT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "grant_posting_id" TEXT NOT NULL,
    "expired_amount" BIGINT,
    "expiry_posting_id" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expired_at" TIMESTAMPTZ(3),
    CONSTRAINT "promotional_grants_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "promotional_grants_amount_check" CHECK ("amount" > 0),
    CONSTRAINT "promotional_grants_remaining_check" CHECK ("remaining" BETWEEN 0 AND "amount"),
    CONSTRAINT "promotional_grants_expired_check" CHECK (("expired_at" IS NULL) = ("expired_amount" IS NULL)),
    CONSTRAINT "promotional_grants_grant_posting_id_fkey" FOREIGN KEY ("grant_posting_id") REFERENCES "postings" ("id") ON DELETE RESTRICT ON UPDATE RESTRICT,
    CONSTRAINT "promotional_grants_expiry_posting_id_fkey" FOREIGN KEY ("expiry_posting_id") REFERENCES "postings" ("id") ON DELETE RESTRICT ON UPDATE RESTRICT
);
CREATE UNIQUE INDEX "promotional_grants_grant_posting_id_key" ON "promotional_grants" ("grant_posting_id");
CREATE INDEX "promotional_grants_organization_id_expires_at_idx" ON "promotional_grants" ("organization_id", "expires_at");
CREATE INDEX "promotional_grants_expired_at_expires_at_idx" ON "promotional_grants" ("expired_at", "expires_at");

-- The usage-unit registry (packages/contracts/registry/usage-units.json), versioned.
CREATE TABLE "usage_units" (
    "id" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "owner_product" TEXT NOT NULL,
    "display_name" TEXT NOT NULL,
    "base_unit" TEXT NOT NULL,
    "base_per_unit" INTEGER NOT NULL,
    "precision" INTEGER NOT NULL,
    "rating_category" TEXT NOT NULL,
    "lifecycle" TEXT NOT NULL,
    "description" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "usage_units_pkey" PRIMARY KEY ("id", "version"),
    CONSTRAINT "usage_units_version_check" CHECK ("version" > 0),
    CONSTRAINT "usage_units_base_per_unit_check" CHECK ("base_per_unit" > 0),
    CONSTRAINT "usage_units_precision_check" CHECK ("precision" BETWEEN 0 AND 12),
    CONSTRAINT "usage_units_rating_category_check" CHECK ("rating_category" IN ('interval', 'point')),
    CONSTRAINT "usage_units_lifecycle_check" CHECK ("lifecycle" IN ('active', 'deprecated', 'retired'))
);

INSERT INTO "usage_units" ("id", "version", "owner_product", "display_name", "base_unit", "base_per_unit", "precision", "rating_category", "lifecycle", "description") VALUES
    ('gpu_hour', 1, 'gpuaas', 'GPU hour', 'gpu_second', 3600, 0, 'interval', 'active', 'One GPU held for an hour, counted in GPU-seconds.'),
    ('app_runtime_hour', 1, 'appplatform', 'App runtime hour', 'second', 3600, 0, 'interval', 'active', 'One app instance running for an hour, counted in seconds.'),
    ('request', 1, 'tokenfactory', 'Request', 'request', 1, 0, 'point', 'active', 'One inference request.'),
    ('token_input', 1, 'tokenfactory', 'Input token', 'token', 1, 0, 'point', 'active', 'One prompt token sent to a model.'),
    ('token_output', 1, 'tokenfactory', 'Output token', 'token', 1, 0, 'point', 'active', 'One token a model generated.'),
    ('cached_token', 1, 'tokenfactory', 'Cached token', 'token', 1, 0, 'point', 'active', 'One prompt token served from the prompt cache.');

-- Price books: versioned, effective from a time, never changed once written.
CREATE TABLE "price_books" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "version" INTEGER NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "effective_from" TIMESTAMPTZ(3) NOT NULL,
    "description" TEXT NOT NULL,
    "actor" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "price_books_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "price_books_version_check" CHECK ("version" > 0),
    CONSTRAINT "price_books_currency_check" CHECK ("currency" ~ '^[A-Z]{3}$')
);
CREATE UNIQUE INDEX "price_books_currency_version_key" ON "price_books" ("currency", "version");
CREATE INDEX "price_books_currency_effective_from_idx" ON "price_books" ("currency", "effective_from");

-- A price in minor units per unit (gpu_hour, token_input, ...), exact to 12 decimals;
-- resource '*' is the unit's price for any resource without its own.
CREATE TABLE "price_book_prices" (
    "price_book_id" UUID NOT NULL,
    "unit_id" TEXT NOT NULL,
    "unit_version" INTEGER NOT NULL,
    "resource_type" TEXT NOT NULL,
    "resource_id" TEXT NOT NULL,
    "unit_price" DECIMAL(30,12) NOT NULL,
    CONSTRAINT "price_book_prices_pkey" PRIMARY KEY ("price_book_id", "unit_id", "resource_type", "resource_id"),
    CONSTRAINT "price_book_prices_unit_price_check" CHECK ("unit_price" >= 0),
    CONSTRAINT "price_book_prices_price_book_id_fkey" FOREIGN KEY ("price_book_id") REFERENCES "price_books" ("id") ON DELETE RESTRICT ON UPDATE RESTRICT,
    CONSTRAINT "price_book_prices_unit_id_unit_version_fkey" FOREIGN KEY ("unit_id", "unit_version") REFERENCES "usage_units" ("id", "version") ON DELETE RESTRICT ON UPDATE RESTRICT
);

CREATE TRIGGER "price_books_immutable" BEFORE UPDATE OR DELETE ON "price_books" FOR EACH ROW EXECUTE FUNCTION "refuse_ledger_change"();
CREATE TRIGGER "price_books_no_truncate" BEFORE TRUNCATE ON "price_books" FOR EACH STATEMENT EXECUTE FUNCTION "refuse_ledger_change"();
CREATE TRIGGER "price_book_prices_immutable" BEFORE UPDATE OR DELETE ON "price_book_prices" FOR EACH ROW EXECUTE FUNCTION "refuse_ledger_change"();
CREATE TRIGGER "price_book_prices_no_truncate" BEFORE TRUNCATE ON "price_book_prices" FOR EACH STATEMENT EXECUTE FUNCTION "refuse_ledger_change"();

-- Billing's own view of iam's hierarchy, kept from iam's events (never iam's tables).
CREATE TABLE "organizations" (
    "id" UUID NOT NULL,
    "slug" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "billing_currency" CHAR(3) NOT NULL,
    "status" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "organizations_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "departments" (
    "id" UUID NOT NULL,
    "organization_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "departments_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "departments_organization_id_idx" ON "departments" ("organization_id");
CREATE TABLE "projects" (
    "id" UUID NOT NULL,
    "organization_id" UUID NOT NULL,
    "department_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "projects_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "projects_organization_id_idx" ON "projects" ("organization_id");

-- billing's status as the platform sees it (platform.status.billing.changed carries it).
CREATE TABLE "service_status" (
    "service" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "reason" TEXT,
    "version" INTEGER NOT NULL,
    "changed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "service_status_pkey" PRIMARY KEY ("service"),
    CONSTRAINT "service_status_status_check" CHECK ("status" IN ('operational', 'degraded', 'outage', 'maintenance'))
);

-- Each run of the balance check (billing:verify or the scheduled one).
CREATE TABLE "ledger_checks" (
    "id" BIGSERIAL NOT NULL,
    "trigger" TEXT NOT NULL,
    "ok" BOOLEAN NOT NULL,
    "mismatches" JSONB NOT NULL DEFAULT '[]',
    "started_at" TIMESTAMPTZ(3) NOT NULL,
    "finished_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "ledger_checks_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "ledger_checks_finished_at_idx" ON "ledger_checks" ("finished_at");

-- The consumer tables of billing's durable consumer of iam's events:
-- @aifactory/event-consumers' CONSUMER_TABLES_SQL, for the runner's search_path.
CREATE TABLE IF NOT EXISTS processed_events (
  consumer          text        NOT NULL,
  event_id          uuid        NOT NULL,
  aggregate_type    text        NOT NULL,
  aggregate_id      text        NOT NULL,
  aggregate_version integer     NOT NULL CHECK (aggregate_version > 0),
  outcome           text        NOT NULL CHECK (outcome IN ('applied', 'skipped')),
  processed_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);

CREATE TABLE IF NOT EXISTS aggregate_versions (
  consumer       text    NOT NULL,
  aggregate_type text    NOT NULL,
  aggregate_id   text    NOT NULL,
  version        integer NOT NULL CHECK (version >= 0),
  PRIMARY KEY (consumer, aggregate_type, aggregate_id)
);

CREATE TABLE IF NOT EXISTS dead_letters (
  consumer   text        NOT NULL,
  event_id   text        NOT NULL,
  subject    text        NOT NULL,
  envelope   jsonb       NOT NULL,
  reason     text        NOT NULL,
  detail     text,
  deliveries integer     NOT NULL CHECK (deliveries > 0),
  dead_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);

-- Append-only against the app role: whatever default privileges granted on the
-- ledger and the price books, UPDATE, DELETE and TRUNCATE are taken back from
-- every role but the owner (the runner's role here).
DO $$
DECLARE
    grantee_role text;
    ledger_table text;
BEGIN
    FOREACH ledger_table IN ARRAY ARRAY['postings', 'transfers', 'price_books', 'price_book_prices'] LOOP
        FOR grantee_role IN
            SELECT DISTINCT g.grantee FROM information_schema.role_table_grants g
            WHERE g.table_schema = current_schema() AND g.table_name = ledger_table AND g.grantee <> current_user
        LOOP
            EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON %I FROM %I', ledger_table, grantee_role);
        END LOOP;
    END LOOP;
END;
$$;
