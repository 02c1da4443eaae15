import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * The registries' initial contents (seed 002, Required Registries), committed
 * as data in `packages/contracts/registry/` so IAM's migration loads them and
 * tests and checks read the same files. At run time IAM's tables are the
 * authority; these files are only where every environment starts.
 */

const LIFECYCLE = z.enum(['active', 'deprecated', 'retired']);
/**
 * Applied migrations never change, so a row added to a file after iam's
 * migration 0004 names the later migration that inserts it: `"since": 7` is
 * `0007_registry_*` (subgraphs/iam/src/registry/initial-data-sql.ts). Rows
 * without it are 0004's.
 */
const SINCE = z.number().int().min(5).optional();
export const SCOPE_PATTERN = /^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$/;
export const AUDIT_ACTION_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){2}$/;

export const productRowSchema = z.object({
  id: z.string().regex(/^[a-z][a-z0-9_]*$/),
  displayName: z.string().min(1),
  owner: z.string().min(1),
  lifecycle: LIFECYCLE,
  since: SINCE,
});

export const scopeRowSchema = z.object({
  id: z.string().regex(SCOPE_PATTERN),
  product: z.string().min(1),
  description: z.string().min(1),
  riskClass: z.enum(['low', 'medium', 'high', 'critical']),
  lifecycle: LIFECYCLE,
  memberVisible: z.boolean().default(false),
  since: SINCE,
});

export const resourceTypeRowSchema = z.object({
  id: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/),
  product: z.string().min(1),
  description: z.string().min(1),
  since: SINCE,
});

export const auditActionRowSchema = z.object({
  id: z.string().regex(AUDIT_ACTION_PATTERN),
  product: z.string().min(1),
  version: z.number().int().positive(),
  retentionClass: z.enum(['standard', 'extended', 'legal_hold']),
  privileged: z.boolean(),
  description: z.string().min(1),
  since: SINCE,
});

export const roleRowSchema = z.object({
  id: z.string().regex(/^[a-z][a-z0-9_]*$/),
  kind: z.enum(['membership', 'platform']),
  levels: z.array(z.enum(['organization', 'department', 'project'])),
  rank: z.number().int().nonnegative(),
  description: z.string().min(1),
  /** `["*"]`: every registered scope (platform_admin). */
  scopes: z.array(z.string()),
  since: SINCE,
});

const policyValue = z.union([z.string(), z.boolean()]);
export const policyKeyRowSchema = z.object({
  key: z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/),
  type: z.enum(['integer', 'decimal', 'boolean', 'duration', 'enum']),
  unit: z.string().nullable(),
  default: policyValue,
  direction: z.enum(['ceiling', 'floor', 'none']),
  application: z.enum(['per_project', 'pooled']),
  enumValues: z.array(z.string()).nullable(),
  description: z.string().min(1),
  lifecycle: LIFECYCLE,
  since: SINCE,
});

/**
 * A platform service that calls other services with its own short-lived
 * tokens (issue 15, Service identity): the scopes it may claim and the
 * services (audiences) it may call. Its public keys are registered at run
 * time, never committed here.
 */
export const serviceIdentityRowSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9-]*$/),
  description: z.string().min(1),
  scopes: z.array(z.string().regex(SCOPE_PATTERN)),
  audiences: z.array(z.string().regex(/^[a-z][a-z0-9-]*$/)).min(1),
  /** Every service identity came after migration 0004, so each names the migration that inserts it. */
  since: z.number().int().min(5),
});

export type ProductRow = z.infer<typeof productRowSchema>;
export type ScopeRow = z.infer<typeof scopeRowSchema>;
export type ResourceTypeRow = z.infer<typeof resourceTypeRowSchema>;
export type AuditActionRow = z.infer<typeof auditActionRowSchema>;
export type RoleRow = z.infer<typeof roleRowSchema>;
export type PolicyKeyRow = z.infer<typeof policyKeyRowSchema>;
export type ServiceIdentityRow = z.infer<typeof serviceIdentityRowSchema>;

export interface RegistryData {
  products: ProductRow[];
  scopes: ScopeRow[];
  resourceTypes: ResourceTypeRow[];
  auditActions: AuditActionRow[];
  roles: RoleRow[];
  policyKeys: PolicyKeyRow[];
  serviceIdentities: ServiceIdentityRow[];
}

function readRegistry<T>(file: string, schema: z.ZodType<T>): T[] {
  const text = readFileSync(new URL(`../registry/${file}`, import.meta.url), 'utf8');
  return z.array(schema).parse(JSON.parse(text));
}

let cached: RegistryData | undefined;

/** The committed registry files, validated; read once per process. */
export function loadRegistryData(): RegistryData {
  cached ??= {
    products: readRegistry('products.json', productRowSchema),
    scopes: readRegistry('scopes.json', scopeRowSchema),
    resourceTypes: readRegistry('resource-types.json', resourceTypeRowSchema),
    auditActions: readRegistry('audit-actions.json', auditActionRowSchema),
    roles: readRegistry('roles.json', roleRowSchema),
    policyKeys: readRegistry('policy-keys.json', policyKeyRowSchema),
    serviceIdentities: readRegistry('service-identities.json', serviceIdentityRowSchema),
  };
  return cached;
}
