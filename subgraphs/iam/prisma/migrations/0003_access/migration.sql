-- iam: users, memberships and invitations, platform grants, the registries
-- (products, scopes, resource types, audit actions, roles) and policy
-- (keys, plans, values). The registries' initial rows come in 0004 from the
-- committed files in packages/contracts/registry.

CREATE TYPE "MembershipLevel" AS ENUM ('organization', 'department', 'project');
CREATE TYPE "PlatformRole" AS ENUM ('platform_admin', 'internal_developer');
CREATE TYPE "RegistryLifecycle" AS ENUM ('active', 'deprecated', 'retired');
CREATE TYPE "PolicyLevel" AS ENUM ('global', 'plan', 'organization', 'department', 'project');

-- Every change an event announces bumps the aggregate's version.
ALTER TABLE "departments"
    ADD COLUMN "version" INTEGER NOT NULL DEFAULT 1,
    ADD CONSTRAINT "departments_version_check" CHECK ("version" >= 1);
ALTER TABLE "projects"
    ADD COLUMN "version" INTEGER NOT NULL DEFAULT 1,
    ADD CONSTRAINT "projects_version_check" CHECK ("version" >= 1);
-- Memberships and invitations reference a project together with its department.
CREATE UNIQUE INDEX "projects_department_id_id_key" ON "projects" ("department_id", "id");

CREATE TABLE "users" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "issuer" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "email" TEXT,
    "email_verified" BOOLEAN NOT NULL DEFAULT false,
    "name" TEXT,
    "access_version" INTEGER NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "users_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "users_access_version_check" CHECK ("access_version" >= 1)
);
CREATE UNIQUE INDEX "users_issuer_subject_key" ON "users" ("issuer", "subject");
-- Invitations are claimed by verified email.
CREATE INDEX "users_email_lower_idx" ON "users" (lower("email"));

CREATE TABLE "products" (
    "id" TEXT NOT NULL,
    "display_name" TEXT NOT NULL,
    "owner" TEXT NOT NULL,
    "lifecycle" "RegistryLifecycle" NOT NULL DEFAULT 'active',
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "products_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "products_id_check" CHECK ("id" ~ '^[a-z][a-z0-9_]*$')
);

CREATE TABLE "scopes" (
    "id" TEXT NOT NULL,
    "product_id" TEXT NOT NULL,
    "description" TEXT NOT NULL,
    "risk_class" TEXT NOT NULL,
    "lifecycle" "RegistryLifecycle" NOT NULL DEFAULT 'active',
    "member_visible" BOOLEAN NOT NULL DEFAULT false,
    "registry_version" INTEGER NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "scopes_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "scopes_product_id_fkey" FOREIGN KEY ("product_id") REFERENCES "products" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    -- <product>:<resource>:<verb>, the product being its own.
    CONSTRAINT "scopes_id_check" CHECK ("id" ~ '^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$' AND split_part("id", ':', 1) = "product_id"),
    CONSTRAINT "scopes_risk_class_check" CHECK ("risk_class" IN ('low', 'medium', 'high', 'critical'))
);

CREATE TABLE "resource_types" (
    "id" TEXT NOT NULL,
    "product_id" TEXT NOT NULL,
    "description" TEXT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "resource_types_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "resource_types_product_id_fkey" FOREIGN KEY ("product_id") REFERENCES "products" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "resource_types_id_check" CHECK ("id" ~ '^[a-z][a-z0-9_]{0,62}$')
);

CREATE TABLE "audit_actions" (
    "id" TEXT NOT NULL,
    "product_id" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "retention_class" TEXT NOT NULL,
    "privileged" BOOLEAN NOT NULL,
    "description" TEXT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "audit_actions_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "audit_actions_product_id_fkey" FOREIGN KEY ("product_id") REFERENCES "products" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "audit_actions_id_check" CHECK ("id" ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){2}$'),
    CONSTRAINT "audit_actions_retention_class_check" CHECK ("retention_class" IN ('standard', 'extended', 'legal_hold'))
);

CREATE TABLE "roles" (
    "id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "levels" "MembershipLevel"[] NOT NULL,
    "rank" INTEGER NOT NULL,
    "description" TEXT NOT NULL,
    "all_scopes" BOOLEAN NOT NULL DEFAULT false,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "roles_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "roles_kind_check" CHECK ("kind" IN ('membership', 'platform'))
);

CREATE TABLE "role_scopes" (
    "role_id" TEXT NOT NULL,
    "scope_id" TEXT NOT NULL,
    CONSTRAINT "role_scopes_pkey" PRIMARY KEY ("role_id", "scope_id"),
    CONSTRAINT "role_scopes_role_id_fkey" FOREIGN KEY ("role_id") REFERENCES "roles" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "role_scopes_scope_id_fkey" FOREIGN KEY ("scope_id") REFERENCES "scopes" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

CREATE TABLE "memberships" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "user_id" UUID NOT NULL,
    "organization_id" UUID NOT NULL,
    "level" "MembershipLevel" NOT NULL,
    "node_id" UUID NOT NULL,
    "department_id" UUID,
    "project_id" UUID,
    "role" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "granted_by" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "memberships_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "memberships_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "memberships_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organizations" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "memberships_organization_id_department_id_fkey" FOREIGN KEY ("organization_id", "department_id")
        REFERENCES "departments" ("organization_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "memberships_department_id_project_id_fkey" FOREIGN KEY ("department_id", "project_id")
        REFERENCES "projects" ("department_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "memberships_role_fkey" FOREIGN KEY ("role") REFERENCES "roles" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "memberships_version_check" CHECK ("version" >= 1),
    -- The node is the organization, the department or the project, as the level says.
    CONSTRAINT "memberships_node_check" CHECK (
        ("level" = 'organization' AND "department_id" IS NULL AND "project_id" IS NULL AND "node_id" = "organization_id") OR
        ("level" = 'department' AND "department_id" IS NOT NULL AND "project_id" IS NULL AND "node_id" = "department_id") OR
        ("level" = 'project' AND "department_id" IS NOT NULL AND "project_id" IS NOT NULL AND "node_id" = "project_id"))
);
CREATE UNIQUE INDEX "memberships_user_id_node_id_key" ON "memberships" ("user_id", "node_id");
CREATE INDEX "memberships_organization_id_role_idx" ON "memberships" ("organization_id", "role");
CREATE INDEX "memberships_node_id_idx" ON "memberships" ("node_id");

CREATE TABLE "invitations" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "email" TEXT NOT NULL,
    "organization_id" UUID NOT NULL,
    "level" "MembershipLevel" NOT NULL,
    "node_id" UUID NOT NULL,
    "department_id" UUID,
    "project_id" UUID,
    "role" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "invited_by" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "invitations_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "invitations_organization_id_fkey" FOREIGN KEY ("organization_id") REFERENCES "organizations" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "invitations_organization_id_department_id_fkey" FOREIGN KEY ("organization_id", "department_id")
        REFERENCES "departments" ("organization_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "invitations_department_id_project_id_fkey" FOREIGN KEY ("department_id", "project_id")
        REFERENCES "projects" ("department_id", "id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "invitations_role_fkey" FOREIGN KEY ("role") REFERENCES "roles" ("id") ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "invitations_email_check" CHECK ("email" = lower("email") AND "email" LIKE '%_@_%'),
    CONSTRAINT "invitations_version_check" CHECK ("version" >= 1),
    CONSTRAINT "invitations_node_check" CHECK (
        ("level" = 'organization' AND "department_id" IS NULL AND "project_id" IS NULL AND "node_id" = "organization_id") OR
        ("level" = 'department' AND "department_id" IS NOT NULL AND "project_id" IS NULL AND "node_id" = "department_id") OR
        ("level" = 'project' AND "department_id" IS NOT NULL AND "project_id" IS NOT NULL AND "node_id" = "project_id"))
);
CREATE UNIQUE INDEX "invitations_email_node_id_key" ON "invitations" ("email", "node_id");
CREATE INDEX "invitations_node_id_idx" ON "invitations" ("node_id");

CREATE TABLE "platform_grants" (
    "user_id" UUID NOT NULL,
    "role" "PlatformRole" NOT NULL,
    "granted_by" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "platform_grants_pkey" PRIMARY KEY ("user_id", "role"),
    CONSTRAINT "platform_grants_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

CREATE TABLE "registry_versions" (
    "name" TEXT NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT "registry_versions_pkey" PRIMARY KEY ("name"),
    CONSTRAINT "registry_versions_version_check" CHECK ("version" >= 0)
);

CREATE TABLE "policy_keys" (
    "key" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "unit" TEXT,
    "default_value" JSONB NOT NULL,
    "direction" TEXT NOT NULL,
    "application" TEXT NOT NULL,
    "enum_values" TEXT[],
    "description" TEXT NOT NULL,
    "lifecycle" "RegistryLifecycle" NOT NULL DEFAULT 'active',
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "policy_keys_pkey" PRIMARY KEY ("key"),
    CONSTRAINT "policy_keys_key_check" CHECK ("key" ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    CONSTRAINT "policy_keys_type_check" CHECK ("type" IN ('integer', 'decimal', 'boolean', 'duration', 'enum')),
    CONSTRAINT "policy_keys_direction_check" CHECK ("direction" IN ('ceiling', 'floor', 'none')),
    CONSTRAINT "policy_keys_application_check" CHECK ("application" IN ('per_project', 'pooled'))
);

CREATE TABLE "plans" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "slug" VARCHAR(63) NOT NULL,
    "name" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "plans_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "plans_slug_key" ON "plans" ("slug");

ALTER TABLE "organizations"
    ADD COLUMN "plan_id" UUID,
    ADD CONSTRAINT "organizations_plan_id_fkey" FOREIGN KEY ("plan_id") REFERENCES "plans" ("id") ON DELETE RESTRICT ON UPDATE CASCADE;

CREATE TABLE "policy_values" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "level" "PolicyLevel" NOT NULL,
    "target_id" UUID NOT NULL,
    "organization_id" UUID,
    "key" TEXT NOT NULL,
    "value" JSONB NOT NULL,
    "set_by" TEXT,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "policy_values_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "policy_values_key_fkey" FOREIGN KEY ("key") REFERENCES "policy_keys" ("key") ON DELETE RESTRICT ON UPDATE CASCADE,
    -- Global values have the nil UUID as target; only organization-level and lower carry an organization.
    CONSTRAINT "policy_values_target_check" CHECK (
        ("level" = 'global' AND "target_id" = '00000000-0000-0000-0000-000000000000' AND "organization_id" IS NULL) OR
        ("level" = 'plan' AND "organization_id" IS NULL) OR
        ("level" IN ('organization', 'department', 'project') AND "organization_id" IS NOT NULL))
);
CREATE UNIQUE INDEX "policy_values_level_target_id_key_key" ON "policy_values" ("level", "target_id", "key");
CREATE INDEX "policy_values_organization_id_idx" ON "policy_values" ("organization_id");

INSERT INTO "registry_versions" ("name", "version") VALUES
    ('products', 0), ('scopes', 0), ('resource_types', 0), ('audit_actions', 0), ('roles', 0), ('policy_keys', 0), ('policy', 0);
