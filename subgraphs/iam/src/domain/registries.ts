import { z } from 'zod';
import { AUDIT_ACTION_PATTERN, registryChangedV1, SCOPE_PATTERN, type RegistryChangedPayload } from '@aifactory/contracts';
import { AppError, parseInput } from '@aifactory/errors';
import { buildCatalogSnapshot, RISK_CLASSES, type Access, type CatalogSnapshot } from '@aifactory/authz';
import type { OutboxEventInput } from '@aifactory/events';
import type { Principal } from '@aifactory/service-auth';
import { actorOf, type Outbox } from '@aifactory/subgraph-kit';
import type { IamPrisma } from '../data/database.js';
import type { KeysetPage, Page } from '../data/registries-pages.js';
import {
  RegistryStore,
  type AuditAction,
  type Product,
  type ProductFilter,
  type RegistryLifecycle,
  type RegistryName,
  type RegistryTransaction,
  type RegistryVersion,
  type ResourceType,
  type Role,
  type Scope,
  type ScopeFilter,
} from '../data/registries.js';
import { auditEvent } from './audit.js';

/** A request that reads or changes registries or policy: who asks, how they are authorized, and the correlation id its events carry. */
export interface AuthorizedCaller {
  principal: Principal;
  correlationId: string;
  access: Pick<Access, 'require' | 'requireHolds'>;
}

/** Scopes that gate the registries (registry/scopes.json); `manage` is held by platform admins only. */
export const REGISTRY_READ = 'platform:registry:read';
export const REGISTRY_MANAGE = 'platform:registry:manage';

const productIdSchema = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be lowercase letters, digits or underscores, starting with a letter');
const descriptionSchema = z.string().trim().min(1).max(500);
const lifecycleSchema = z.enum(['active', 'deprecated', 'retired']);

const productInput = z.object({
  id: productIdSchema,
  displayName: z.string().trim().min(1).max(200),
  owner: z.string().trim().min(1).max(100),
});
const scopeInput = z.object({
  id: z.string().regex(SCOPE_PATTERN, 'must be <product>:<resource>:<verb> in lowercase letters, digits or underscores'),
  product: productIdSchema,
  description: descriptionSchema,
  riskClass: z.enum(RISK_CLASSES),
  memberVisible: z.boolean().nullish(),
});
const resourceTypeInput = z.object({
  id: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be lowercase letters, digits or underscores, starting with a letter'),
  product: productIdSchema,
  description: descriptionSchema,
});
const auditActionInput = z.object({
  id: z.string().regex(AUDIT_ACTION_PATTERN, 'must be <publisher>.<resource>.<verb>'),
  product: productIdSchema,
  version: z.number().int().min(1).nullish(),
  retentionClass: z.enum(['standard', 'extended', 'legal_hold']),
  privileged: z.boolean(),
  description: descriptionSchema,
});
const roleScopesInput = z.object({ role: z.string().min(1).max(63), scopes: z.array(z.string().max(200)).max(500) });

type RegistryChange = RegistryChangedPayload['change'];

function duplicate(registry: RegistryName, id: string): AppError {
  return new AppError('IAM_DUPLICATE', `${id} is already registered`, { details: { registry, id } });
}

/**
 * The product, scope, resource-type, audit-action and role registries (seed
 * 002, Required Registries). Each is versioned: a change bumps its version in
 * the change's transaction and announces `platform.iam.registry.changed`
 * with an `iam.registry.change` audit record. Nothing is ever deleted: a
 * scope is retired, and the catalogue keeps listing it as retired so checks
 * refuse it by name rather than as unknown.
 */
export class RegistryService {
  private readonly store: RegistryStore;

  constructor(
    prisma: IamPrisma,
    private readonly outbox: Outbox,
  ) {
    this.store = new RegistryStore(prisma);
  }

  /** What IAM publishes as `catalog` in its read model; platform roles marked all-scopes list every registered scope. */
  async catalogSnapshot(): Promise<CatalogSnapshot> {
    const rows = await this.store.catalogRows();
    return buildCatalogSnapshot({
      scopes: rows.scopes.map((scope) => ({
        id: scope.id,
        product: scope.productId,
        riskClass: riskClassOf(scope),
        lifecycle: scope.lifecycle,
        memberVisible: scope.memberVisible,
      })),
      roles: rows.roles.map((role) => ({
        id: role.id,
        kind: role.kind === 'platform' ? 'platform' : 'membership',
        levels: role.levels,
        rank: role.rank,
        scopes: role.allScopes ? ['*'] : role.scopes.map((entry) => entry.scopeId),
      })),
      // `policy` counts policy snapshots, which carry their own version; the catalogue is republished only on registry changes.
      registryVersions: Object.fromEntries(rows.versions.filter((row) => row.name !== 'policy').map((row) => [row.name, row.version])),
      publishedAt: new Date().toISOString(),
    });
  }

  registryVersions(caller: AuthorizedCaller, page: KeysetPage): Promise<Page<RegistryVersion>> {
    caller.access.requireHolds(REGISTRY_READ);
    return this.store.listVersions(page);
  }

  products(caller: AuthorizedCaller, page: KeysetPage): Promise<Page<Product>> {
    caller.access.requireHolds(REGISTRY_READ);
    return this.store.listProducts(page);
  }

  product(caller: AuthorizedCaller, id: string): Promise<Product | null> {
    caller.access.requireHolds(REGISTRY_READ);
    return this.store.findProduct(id);
  }

  scopes(caller: AuthorizedCaller, filter: ScopeFilter, page: KeysetPage): Promise<Page<Scope>> {
    caller.access.requireHolds(REGISTRY_READ);
    return this.store.listScopes(filter, page);
  }

  scope(caller: AuthorizedCaller, id: string): Promise<Scope | null> {
    caller.access.requireHolds(REGISTRY_READ);
    return this.store.findScope(id);
  }

  resourceTypes(caller: AuthorizedCaller, filter: ProductFilter, page: KeysetPage): Promise<Page<ResourceType>> {
    caller.access.requireHolds(REGISTRY_READ);
    return this.store.listResourceTypes(filter, page);
  }

  auditActions(caller: AuthorizedCaller, filter: ProductFilter, page: KeysetPage): Promise<Page<AuditAction>> {
    caller.access.requireHolds(REGISTRY_READ);
    return this.store.listAuditActions(filter, page);
  }

  roles(caller: AuthorizedCaller, page: KeysetPage): Promise<Page<Role>> {
    caller.access.requireHolds(REGISTRY_READ);
    return this.store.listRoles(page);
  }

  role(caller: AuthorizedCaller, id: string): Promise<Role | null> {
    caller.access.requireHolds(REGISTRY_READ);
    return this.store.findRole(id);
  }

  /** A role's scopes; an all-scopes role (platform_admin) lists every registered one. */
  scopesOfRole(caller: AuthorizedCaller, role: Role, page: KeysetPage): Promise<Page<Scope>> {
    caller.access.requireHolds(REGISTRY_READ);
    return role.allScopes ? this.store.listScopes({}, page) : this.store.scopesOfRole(role.id, page);
  }

  async registerProduct(caller: AuthorizedCaller, input: z.input<typeof productInput>): Promise<Product> {
    caller.access.requireHolds(REGISTRY_MANAGE);
    const valid = parseInput(productInput, input);
    return this.store.transaction(async (tx) => {
      await this.recordChange(tx, caller, 'products', valid.id, 'registered', { displayName: valid.displayName, owner: valid.owner });
      const created = await this.store.insertProduct(tx, valid);
      if (created === null) throw duplicate('products', valid.id);
      return created;
    });
  }

  /** The scope's name must be its product's (`<product>:<resource>:<verb>`) and the product registered and not retired. */
  async registerScope(caller: AuthorizedCaller, input: z.input<typeof scopeInput>): Promise<Scope> {
    caller.access.requireHolds(REGISTRY_MANAGE);
    const valid = parseInput(scopeInput, input);
    if (valid.id.split(':')[0] !== valid.product) {
      throw new AppError('BAD_REQUEST_INVALID_INPUT', `id must start with its product, ${valid.product}:`, { details: { id: valid.id, product: valid.product } });
    }
    return this.store.transaction(async (tx) => {
      await this.requireLiveProduct(tx, valid.product);
      const version = await this.recordChange(tx, caller, 'scopes', valid.id, 'registered', { product: valid.product, riskClass: valid.riskClass });
      const scope = await this.store.insertScope(tx, {
        id: valid.id,
        productId: valid.product,
        description: valid.description,
        riskClass: valid.riskClass,
        memberVisible: valid.memberVisible ?? false,
        registryVersion: version,
      });
      if (scope === null) throw duplicate('scopes', valid.id);
      return scope;
    });
  }

  /**
   * A deprecated scope keeps working and is flagged; a retired one is refused
   * everywhere it is checked. Grants and role mappings stay as they are, so
   * reactivating it restores them. Setting the lifecycle it has changes nothing.
   */
  async setScopeLifecycle(caller: AuthorizedCaller, input: { scope: string; lifecycle: RegistryLifecycle }): Promise<Scope> {
    caller.access.requireHolds(REGISTRY_MANAGE);
    const valid = parseInput(z.object({ scope: z.string().min(1).max(200), lifecycle: lifecycleSchema }), input);
    return this.store.transaction(async (tx) => {
      const current = await this.store.findScope(valid.scope, tx);
      if (current === null) throw new AppError('IAM_SCOPE_UNKNOWN', `The scope ${valid.scope} is not registered`, { details: { scope: valid.scope } });
      if (current.lifecycle === valid.lifecycle) return current;
      const change: RegistryChange = valid.lifecycle === 'active' ? 'reactivated' : valid.lifecycle;
      const version = await this.recordChange(tx, caller, 'scopes', valid.scope, change, { from: current.lifecycle, to: valid.lifecycle });
      return this.store.updateScopeLifecycle(tx, valid.scope, valid.lifecycle, version);
    });
  }

  async registerResourceType(caller: AuthorizedCaller, input: z.input<typeof resourceTypeInput>): Promise<ResourceType> {
    caller.access.requireHolds(REGISTRY_MANAGE);
    const valid = parseInput(resourceTypeInput, input);
    return this.store.transaction(async (tx) => {
      await this.requireLiveProduct(tx, valid.product);
      await this.recordChange(tx, caller, 'resource_types', valid.id, 'registered', { product: valid.product });
      const created = await this.store.insertResourceType(tx, { id: valid.id, productId: valid.product, description: valid.description });
      if (created === null) throw duplicate('resource_types', valid.id);
      return created;
    });
  }

  async registerAuditAction(caller: AuthorizedCaller, input: z.input<typeof auditActionInput>): Promise<AuditAction> {
    caller.access.requireHolds(REGISTRY_MANAGE);
    const valid = parseInput(auditActionInput, input);
    return this.store.transaction(async (tx) => {
      await this.requireLiveProduct(tx, valid.product);
      await this.recordChange(tx, caller, 'audit_actions', valid.id, 'registered', {
        product: valid.product,
        retentionClass: valid.retentionClass,
        privileged: valid.privileged,
      });
      const created = await this.store.insertAuditAction(tx, {
        id: valid.id,
        productId: valid.product,
        version: valid.version ?? 1,
        retentionClass: valid.retentionClass,
        privileged: valid.privileged,
        description: valid.description,
      });
      if (created === null) throw duplicate('audit_actions', valid.id);
      return created;
    });
  }

  /**
   * Replaces the scopes a role carries. Only registered scopes that are not
   * retired may be added (IAM_SCOPE_UNKNOWN names the others); an all-scopes
   * role has no list to set. The same set again changes nothing.
   */
  async setRoleScopes(caller: AuthorizedCaller, input: { role: string; scopes: readonly string[] }): Promise<Role> {
    caller.access.requireHolds(REGISTRY_MANAGE);
    const valid = parseInput(roleScopesInput, input);
    const wanted = [...new Set(valid.scopes)].sort();
    return this.store.transaction(async (tx) => {
      const role = await this.store.findRole(valid.role, tx);
      if (role === null) throw new AppError('NOT_FOUND', `The role ${valid.role} does not exist`, { details: { role: valid.role } });
      if (role.allScopes) {
        throw new AppError('BAD_REQUEST_INVALID_INPUT', `${role.id} holds every registered scope; it has no list to set`, { details: { role: role.id } });
      }
      const usable = new Set((await this.store.findScopes(tx, wanted)).filter((scope) => scope.lifecycle !== 'retired').map((scope) => scope.id));
      const unknown = wanted.filter((scope) => !usable.has(scope));
      if (unknown.length > 0) {
        throw new AppError('IAM_SCOPE_UNKNOWN', `Not registered, or retired: ${unknown.join(', ')}`, { details: { scopes: unknown } });
      }
      const current = await this.store.scopeIdsOfRole(tx, role.id);
      if (current.length === wanted.length && current.every((scope, i) => scope === wanted[i])) return role;
      const currentSet = new Set(current);
      await this.recordChange(tx, caller, 'roles', role.id, 'updated', {
        added: wanted.filter((scope) => !currentSet.has(scope)),
        removed: current.filter((scope) => !usable.has(scope)),
      });
      return this.store.replaceRoleScopes(tx, role.id, wanted);
    });
  }

  private async requireLiveProduct(tx: RegistryTransaction, productId: string): Promise<void> {
    const product = await this.store.findProduct(productId, tx);
    if (product === null || product.lifecycle === 'retired') {
      throw new AppError('BAD_REQUEST_INVALID_INPUT', `The product ${productId} is not registered, or retired`, { details: { product: productId } });
    }
  }

  /** Bumps the registry's version and writes its event and audit record, all in `tx`; returns the new version. */
  private async recordChange(
    tx: RegistryTransaction,
    caller: AuthorizedCaller,
    registry: RegistryName,
    entryId: string,
    change: RegistryChange,
    details: Record<string, unknown>,
  ): Promise<number> {
    const version = await this.store.bumpVersion(tx, registry);
    for (const event of registryChangeEvents(caller, { registry, version, entryId, change }, details)) await this.outbox.add(tx, event);
    return version;
  }
}

/** `platform.iam.registry.changed` (aggregate `registry/<name>`, at the registry's new version) and its `iam.registry.change` audit record. */
export function registryChangeEvents(
  caller: Pick<AuthorizedCaller, 'principal' | 'correlationId'>,
  payload: RegistryChangedPayload,
  details: Record<string, unknown>,
): OutboxEventInput[] {
  const actor = actorOf(caller.principal);
  return [
    {
      type: registryChangedV1.type,
      version: registryChangedV1.version,
      aggregateId: payload.registry,
      aggregateVersion: payload.version,
      actor,
      correlationId: caller.correlationId,
      registryVersions: { [payload.registry]: payload.version },
      payload,
    },
    auditEvent({
      action: 'iam.registry.change',
      outcome: 'succeeded',
      caller: { actor, correlationId: caller.correlationId },
      scope: REGISTRY_MANAGE,
      resource: null,
      details: { ...payload, ...details },
    }),
  ];
}

function riskClassOf(scope: Scope): (typeof RISK_CLASSES)[number] {
  const riskClass = RISK_CLASSES.find((candidate) => candidate === scope.riskClass);
  // The table's CHECK constraint admits only these four.
  if (riskClass === undefined) throw new RangeError(`scope ${scope.id} has risk class ${scope.riskClass}`);
  return riskClass;
}
