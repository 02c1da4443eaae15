-- tokenfactory: the catalogue of models served per token.
CREATE TYPE "ModelStatus" AS ENUM ('active', 'deprecated', 'retired');

CREATE TABLE "models" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "slug" VARCHAR(127) NOT NULL,
    "display_name" TEXT NOT NULL,
    "context_window" INTEGER NOT NULL,
    "status" "ModelStatus" NOT NULL DEFAULT 'active',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "models_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "models_context_window_check" CHECK ("context_window" > 0)
);
CREATE UNIQUE INDEX "models_slug_key" ON "models" ("slug");

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
