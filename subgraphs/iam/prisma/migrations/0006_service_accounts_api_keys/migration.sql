-- iam (issue 15): service accounts and their API keys, and the platform's
-- service identities with their public keys. Secrets are never stored: an
-- API key row holds the HMAC of its secret under a pepper version (the pepper
-- lives in a file named in config), and a service identity only its public keys.
-- The app role gets its data privileges from the schema's default privileges (bootstrap).

CREATE TYPE "ApiKeyStatus" AS ENUM ('active', 'revoked');
CREATE TYPE "ServiceIdentityStatus" AS ENUM ('active', 'disabled');

-- A project's machine identity: it lives and dies with its project.
CREATE TABLE "service_accounts" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "organization_id" UUID NOT NULL,
    "department_id" UUID NOT NULL,
    "project_id" UUID NOT NULL,
    "name" VARCHAR(63) NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "labels" JSONB NOT NULL DEFAULT '[]',
    "status" "LifecycleStatus" NOT NULL DEFAULT 'active',
    "created_by" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "version" INTEGER NOT NULL DEFAULT 1,
    CONSTRAINT "service_accounts_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "service_accounts_department_id_project_id_fkey" FOREIGN KEY ("department_id", "project_id")
        REFERENCES "projects" ("department_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "service_accounts_organization_id_department_id_fkey" FOREIGN KEY ("organization_id", "department_id")
        REFERENCES "departments" ("organization_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "service_accounts_created_by_fkey" FOREIGN KEY ("created_by") REFERENCES "users" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "service_accounts_labels_check" CHECK (jsonb_typeof("labels") = 'array'),
    CONSTRAINT "service_accounts_version_check" CHECK ("version" >= 1)
);
CREATE UNIQUE INDEX "service_accounts_project_id_name_key" ON "service_accounts" ("project_id", "name");
-- Keys reference a service account together with its project.
CREATE UNIQUE INDEX "service_accounts_project_id_id_key" ON "service_accounts" ("project_id", "id");
CREATE INDEX "service_accounts_project_id_created_at_id_idx" ON "service_accounts" ("project_id", "created_at", "id");

-- One API key, looked up by its key id (the public part of the key's text).
CREATE TABLE "api_keys" (
    "key_id" TEXT NOT NULL,
    "service_account_id" UUID NOT NULL,
    "organization_id" UUID NOT NULL,
    "department_id" UUID NOT NULL,
    "project_id" UUID NOT NULL,
    "prefix" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    -- HMAC-SHA256 of the secret under pepper `pepper_version`, base64url: never the secret.
    "hash" TEXT NOT NULL,
    "pepper_version" INTEGER NOT NULL,
    "scopes" TEXT[] NOT NULL,
    "labels" JSONB NOT NULL DEFAULT '[]',
    "expires_at" TIMESTAMPTZ(3),
    "status" "ApiKeyStatus" NOT NULL DEFAULT 'active',
    "revoked_at" TIMESTAMPTZ(3),
    "revoked_by" TEXT,
    "revoke_reason" TEXT,
    -- Set on the old key of a rotation: it works until then, beside its successor.
    "grace_until" TIMESTAMPTZ(3),
    "rotated_to_key_id" TEXT,
    "rotated_from_key_id" TEXT,
    "created_by" UUID,
    "creator_left_at" TIMESTAMPTZ(3),
    -- Written at most once a minute per key (the gateway reports uses in batches).
    "last_used_at" TIMESTAMPTZ(3),
    "registry_version" INTEGER NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("key_id"),
    CONSTRAINT "api_keys_project_id_service_account_id_fkey" FOREIGN KEY ("project_id", "service_account_id")
        REFERENCES "service_accounts" ("project_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "api_keys_department_id_project_id_fkey" FOREIGN KEY ("department_id", "project_id")
        REFERENCES "projects" ("department_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "api_keys_organization_id_department_id_fkey" FOREIGN KEY ("organization_id", "department_id")
        REFERENCES "departments" ("organization_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "api_keys_created_by_fkey" FOREIGN KEY ("created_by") REFERENCES "users" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "api_keys_rotated_to_key_id_fkey" FOREIGN KEY ("rotated_to_key_id") REFERENCES "api_keys" ("key_id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "api_keys_rotated_from_key_id_fkey" FOREIGN KEY ("rotated_from_key_id") REFERENCES "api_keys" ("key_id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "api_keys_key_id_check" CHECK ("key_id" ~ '^[a-z2-7]{20}$'),
    CONSTRAINT "api_keys_pepper_version_check" CHECK ("pepper_version" >= 1),
    CONSTRAINT "api_keys_labels_check" CHECK (jsonb_typeof("labels") = 'array'),
    CONSTRAINT "api_keys_revoked_check" CHECK (("status" = 'revoked') = ("revoked_at" IS NOT NULL)),
    CONSTRAINT "api_keys_rotation_check" CHECK (("rotated_to_key_id" IS NULL) = ("grace_until" IS NULL)),
    CONSTRAINT "api_keys_registry_version_check" CHECK ("registry_version" >= 0),
    CONSTRAINT "api_keys_version_check" CHECK ("version" >= 1)
);
CREATE INDEX "api_keys_project_id_created_at_key_id_idx" ON "api_keys" ("project_id", "created_at", "key_id");
CREATE INDEX "api_keys_service_account_id_created_at_key_id_idx" ON "api_keys" ("service_account_id", "created_at", "key_id");
-- Finds the keys to flag when their creator leaves an organization.
CREATE INDEX "api_keys_created_by_organization_id_idx" ON "api_keys" ("created_by", "organization_id");
-- The read model's full rebuild pages over every key.
CREATE INDEX "api_keys_created_at_key_id_idx" ON "api_keys" ("created_at", "key_id");

-- A platform service calling others with its own short-lived tokens; rows come from
-- packages/contracts/registry/service-identities.json (migration 0007).
CREATE TABLE "service_identities" (
    "name" TEXT NOT NULL,
    "description" TEXT NOT NULL,
    "scopes" TEXT[] NOT NULL,
    "audiences" TEXT[] NOT NULL,
    "status" "ServiceIdentityStatus" NOT NULL DEFAULT 'active',
    "disabled_at" TIMESTAMPTZ(3),
    "disabled_reason" TEXT,
    "version" INTEGER NOT NULL DEFAULT 1,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "service_identities_pkey" PRIMARY KEY ("name"),
    CONSTRAINT "service_identities_name_check" CHECK ("name" ~ '^[a-z][a-z0-9-]*$'),
    CONSTRAINT "service_identities_disabled_check" CHECK (("status" = 'disabled') = ("disabled_at" IS NOT NULL)),
    CONSTRAINT "service_identities_version_check" CHECK ("version" >= 1)
);

-- A service identity's Ed25519 public keys (SPKI PEM) by RFC 7638 thumbprint; two during a rotation.
CREATE TABLE "service_identity_keys" (
    "kid" TEXT NOT NULL,
    "service_name" TEXT NOT NULL,
    "public_key_pem" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "retired_at" TIMESTAMPTZ(3),
    CONSTRAINT "service_identity_keys_pkey" PRIMARY KEY ("kid"),
    CONSTRAINT "service_identity_keys_service_name_fkey" FOREIGN KEY ("service_name") REFERENCES "service_identities" ("name") ON DELETE RESTRICT ON UPDATE CASCADE
);
CREATE INDEX "service_identity_keys_service_name_idx" ON "service_identity_keys" ("service_name");
