-- evidence: the append-only audit log.
CREATE TABLE "audit_events" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "recorded_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "actor_type" TEXT NOT NULL,
    "actor_id" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "organization_id" UUID,
    "department_id" UUID,
    "project_id" UUID,
    "correlation_id" TEXT NOT NULL,
    "payload" JSONB NOT NULL DEFAULT '{}',
    CONSTRAINT "audit_events_pkey" PRIMARY KEY ("id")
);

-- The platform-wide feed reads newest first; a tenant's feed will read within its organization.
CREATE INDEX "audit_events_occurred_at_idx" ON "audit_events" ("occurred_at");
CREATE INDEX "audit_events_organization_id_occurred_at_idx" ON "audit_events" ("organization_id", "occurred_at");

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
