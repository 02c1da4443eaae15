import { z } from 'zod';
import { PLATFORM_ROLES } from '@aifactory/service-auth';

/**
 * The shapes IAM publishes for everyone who authorizes without asking it
 * (ARCHITECTURE.md, Decisions: Principal): the role catalogue and scope
 * registry, each human's grants, and policy snapshots. IAM writes them into
 * its JetStream KV read model (@aifactory/access-model); the gateway and every
 * subgraph read them from there.
 */

export const LEVELS = ['organization', 'department', 'project'] as const;
export type Level = (typeof LEVELS)[number];

export const MEMBERSHIP_ROLES = ['org_admin', 'department_admin', 'project_admin', 'project_member', 'viewer'] as const;
export type MembershipRole = (typeof MEMBERSHIP_ROLES)[number];

export const SCOPE_LIFECYCLES = ['active', 'deprecated', 'retired'] as const;
export type ScopeLifecycle = (typeof SCOPE_LIFECYCLES)[number];

export const RISK_CLASSES = ['low', 'medium', 'high', 'critical'] as const;

export const catalogSnapshotSchema = z.object({
  /** Grows with every change of any registry it carries (the sum of `registryVersions`); internal JWTs carry it as `rv`. */
  version: z.number().int().nonnegative(),
  /** Every registry's version at publication, by registry name (products, scopes, roles, ...). */
  registryVersions: z.record(z.string(), z.number().int().nonnegative()),
  roles: z.record(
    z.string(),
    z.object({ levels: z.array(z.enum(LEVELS)), rank: z.number().int().nonnegative(), scopes: z.array(z.string()) }),
  ),
  /** `platform_admin` lists every registered scope; `internal_developer` its own few. */
  platformRoles: z.record(z.string(), z.object({ scopes: z.array(z.string()) })),
  scopes: z.record(
    z.string(),
    z.object({
      product: z.string(),
      lifecycle: z.enum(SCOPE_LIFECYCLES),
      riskClass: z.enum(RISK_CLASSES),
      /** Any member of an organization holds it on the organization itself, not only org-level grants. */
      memberVisible: z.boolean(),
    }),
  ),
  publishedAt: z.iso.datetime({ offset: true }),
});
export type CatalogSnapshot = z.infer<typeof catalogSnapshotSchema>;

/** A membership as the read model carries it: enough to decide coverage without IAM. */
export const accessGrantSchema = z.object({
  level: z.enum(LEVELS),
  /** The organization, department or project the role is held on. */
  id: z.string().min(1),
  role: z.string().min(1),
  organizationId: z.string().min(1),
  /** Null for an organization grant; the department itself, or the project's department. */
  departmentId: z.string().min(1).nullable(),
});
export type AccessGrant = z.infer<typeof accessGrantSchema>;

/** One human as IAM knows them, keyed in the read model by their identity provider's issuer and subject. */
export const principalEntrySchema = z.object({
  userId: z.string().min(1),
  issuer: z.string().min(1),
  subject: z.string().min(1),
  email: z.string().nullable(),
  emailVerified: z.boolean(),
  name: z.string().nullable(),
  platformRoles: z.array(z.enum(PLATFORM_ROLES)),
  grants: z.array(accessGrantSchema),
  /** +1 on every change of the user or their memberships: the read model keeps the highest. */
  version: z.number().int().positive(),
  updatedAt: z.iso.datetime({ offset: true }),
});
export type PrincipalEntry = z.infer<typeof principalEntrySchema>;

export const POLICY_TYPES = ['integer', 'decimal', 'boolean', 'duration', 'enum'] as const;
export const POLICY_DIRECTIONS = ['ceiling', 'floor', 'none'] as const;
export const POLICY_APPLICATIONS = ['per_project', 'pooled'] as const;
export const POLICY_LEVELS = ['global', 'plan', 'organization', 'department', 'project'] as const;
export type PolicyLevel = (typeof POLICY_LEVELS)[number];

/**
 * A policy value as JSON: integers and decimals travel as strings (exact, like
 * money), booleans as booleans, durations as ISO-8601 strings, enums as their value.
 */
export const policyValueSchema = z.union([z.string(), z.boolean()]);
export type PolicyValue = z.infer<typeof policyValueSchema>;

export const policyKeyDefSchema = z.object({
  key: z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/),
  type: z.enum(POLICY_TYPES),
  unit: z.string().nullable(),
  default: policyValueSchema,
  direction: z.enum(POLICY_DIRECTIONS),
  application: z.enum(POLICY_APPLICATIONS),
  enumValues: z.array(z.string()).nullable(),
  description: z.string(),
  lifecycle: z.enum(SCOPE_LIFECYCLES),
});
export type PolicyKeyDef = z.infer<typeof policyKeyDefSchema>;

const policyValuesSchema = z.record(z.string(), policyValueSchema);
export type PolicyValues = z.infer<typeof policyValuesSchema>;

/**
 * Every value that can apply inside one organization (or, for
 * `policy.global`, none): its consumers compute a project's effective value
 * from it without asking IAM.
 */
export const policySnapshotSchema = z.object({
  /** IAM's policy version: +1 with every change of any value, key or plan. */
  version: z.number().int().nonnegative(),
  organizationId: z.string().nullable(),
  planId: z.string().nullable(),
  keys: z.record(z.string(), policyKeyDefSchema),
  layers: z.object({
    global: policyValuesSchema,
    plan: policyValuesSchema,
    organization: policyValuesSchema,
    departments: z.record(z.string(), policyValuesSchema),
    projects: z.record(z.string(), z.object({ departmentId: z.string(), values: policyValuesSchema })),
  }),
  publishedAt: z.iso.datetime({ offset: true }),
});
export type PolicySnapshot = z.infer<typeof policySnapshotSchema>;

export const heartbeatSchema = z.object({
  at: z.iso.datetime({ offset: true }),
  catalogVersion: z.number().int().nonnegative(),
  policyVersion: z.number().int().nonnegative(),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

/** What `can()` checks a scope against: every domain row carries these ids (ARCHITECTURE.md). */
export interface AuthzResource {
  organizationId: string;
  departmentId?: string | null;
  projectId?: string | null;
}

export const API_KEY_ENTRY_STATUSES = ['active', 'revoked', 'project_archived'] as const;
export type ApiKeyEntryStatus = (typeof API_KEY_ENTRY_STATUSES)[number];

/**
 * One API key as the gateway checks it (issue 15, At the gateway): the HMAC
 * of its secret and the pepper version that made it, never the secret.
 * Keyed in the read model by key id. A rotated key stays `active` with
 * `graceUntil` set; after that instant it is rotated out.
 */
export const apiKeyEntrySchema = z.object({
  keyId: z.string().min(1),
  serviceAccountId: z.string().min(1),
  organizationId: z.string().min(1),
  departmentId: z.string().min(1),
  projectId: z.string().min(1),
  scopes: z.array(z.string()),
  status: z.enum(API_KEY_ENTRY_STATUSES),
  expiresAt: z.iso.datetime({ offset: true }).nullable(),
  /** Set when the key was rotated: it keeps working until then. */
  graceUntil: z.iso.datetime({ offset: true }).nullable(),
  hash: z.string().min(1),
  pepperVersion: z.number().int().positive(),
  /** The catalog version the key was issued (or last re-scoped) under. */
  registryVersion: z.number().int().nonnegative(),
  version: z.number().int().positive(),
  updatedAt: z.iso.datetime({ offset: true }),
});
export type ApiKeyEntry = z.infer<typeof apiKeyEntrySchema>;

export const SERVICE_IDENTITY_STATUSES = ['active', 'disabled'] as const;

/**
 * A platform service that may call other services with its own short-lived
 * tokens (issue 15, Service identity): its public keys (never the private
 * credential), the scopes it may claim and the services it may call.
 * Disabling it refuses its tokens everywhere as soon as the entry arrives.
 */
export const serviceIdentityEntrySchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9-]*$/),
  status: z.enum(SERVICE_IDENTITY_STATUSES),
  scopes: z.array(z.string()),
  audiences: z.array(z.string()),
  /** Ed25519 public keys as SPKI PEM, by RFC 7638 thumbprint (`kid`); two during a credential rotation. */
  keys: z.array(z.object({ kid: z.string().min(1), publicKeyPem: z.string().min(1) })),
  version: z.number().int().positive(),
  updatedAt: z.iso.datetime({ offset: true }),
});
export type ServiceIdentityEntry = z.infer<typeof serviceIdentityEntrySchema>;
