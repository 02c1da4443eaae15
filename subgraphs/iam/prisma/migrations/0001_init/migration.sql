-- iam: the organization -> department -> project hierarchy.
CREATE TYPE "LifecycleStatus" AS ENUM ('active', 'archived');

CREATE TABLE "organizations" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "slug" VARCHAR(63) NOT NULL,
    "name" TEXT NOT NULL,
    "billing_currency" CHAR(3) NOT NULL,
    "status" "LifecycleStatus" NOT NULL DEFAULT 'active',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "organizations_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "organizations_billing_currency_check" CHECK ("billing_currency" ~ '^[A-Z]{3}$')
);
CREATE UNIQUE INDEX "organizations_slug_key" ON "organizations" ("slug");

CREATE TABLE "departments" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "organization_id" UUID NOT NULL,
    "slug" VARCHAR(63) NOT NULL,
    "name" TEXT NOT NULL,
    "status" "LifecycleStatus" NOT NULL DEFAULT 'active',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "departments_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "departments_organization_id_fkey" FOREIGN KEY ("organization_id")
        REFERENCES "organizations" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "departments_organization_id_slug_key" ON "departments" ("organization_id", "slug");
CREATE UNIQUE INDEX "departments_organization_id_id_key" ON "departments" ("organization_id", "id");

CREATE TABLE "projects" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "organization_id" UUID NOT NULL,
    "department_id" UUID NOT NULL,
    "slug" VARCHAR(63) NOT NULL,
    "name" TEXT NOT NULL,
    "status" "LifecycleStatus" NOT NULL DEFAULT 'active',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "projects_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "projects_organization_id_department_id_fkey" FOREIGN KEY ("organization_id", "department_id")
        REFERENCES "departments" ("organization_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "projects_department_id_slug_key" ON "projects" ("department_id", "slug");

-- The outbox, in the event envelope's shape (packages/contracts). A row is
-- written in the same transaction as the change it announces.
CREATE TYPE "OutboxStatus" AS ENUM ('pending', 'published', 'failed');

CREATE TABLE "outbox_events" (
    "id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "subject" TEXT NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "correlation_id" TEXT NOT NULL,
    "traceparent" TEXT,
    "actor" JSONB NOT NULL,
    "organization_id" UUID,
    "department_id" UUID,
    "project_id" UUID,
    "registry_versions" JSONB NOT NULL DEFAULT '{}',
    "aggregate_type" TEXT NOT NULL,
    "aggregate_id" TEXT NOT NULL,
    "aggregate_version" INTEGER NOT NULL,
    "payload" JSONB NOT NULL,
    "status" "OutboxStatus" NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "next_attempt_at" TIMESTAMPTZ(3),
    "published_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "outbox_events_pkey" PRIMARY KEY ("id")
);

-- Two writers can never give one aggregate the same version.
CREATE UNIQUE INDEX "outbox_events_aggregate_type_aggregate_id_aggregate_version_key"
    ON "outbox_events" ("aggregate_type", "aggregate_id", "aggregate_version");

-- The relay only ever scans pending rows, oldest first.
CREATE INDEX "outbox_events_pending_idx" ON "outbox_events" ("occurred_at") WHERE "status" = 'pending';
