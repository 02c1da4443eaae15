import { SCOPE_PATTERN } from '@aifactory/contracts';
import { AppError } from '@aifactory/errors';
import type { CatalogSnapshot, Level, ScopeLifecycle } from './model.js';

/** `<product>:<resource>:<verb>`, the grammar the scope registry enforces. */
export function isScopeName(text: string): boolean {
  return SCOPE_PATTERN.test(text);
}

/** The scope and role rows as the registry files (packages/contracts/registry) hold them. */
export interface ScopeRegistryRow {
  id: string;
  product: string;
  riskClass: CatalogSnapshot['scopes'][string]['riskClass'];
  lifecycle: ScopeLifecycle;
  memberVisible?: boolean;
}

export interface RoleRegistryRow {
  id: string;
  kind: 'membership' | 'platform';
  levels: readonly Level[];
  rank: number;
  /** A platform role may list `*`: every registered scope, so a new scope needs no role edit. */
  scopes: readonly string[];
}

export interface CatalogSources {
  scopes: readonly ScopeRegistryRow[];
  roles: readonly RoleRegistryRow[];
  /** By registry name; `scopes` must be there (API keys record it). */
  registryVersions: Record<string, number>;
  publishedAt: string;
}

const EVERY_SCOPE = '*';

/**
 * Builds what IAM publishes as `catalog` from the registry rows. A role that
 * names an unregistered or malformed scope is a defect in the registry data,
 * so it fails here, once, instead of silently granting nothing per request.
 */
export function buildCatalogSnapshot(sources: CatalogSources): CatalogSnapshot {
  if (sources.registryVersions.scopes === undefined) throw new RangeError('registryVersions has no "scopes" entry');
  // Every registry's version only grows, so their sum grows with any change the catalogue carries (a role's
  // scopes, a product) and the read model, which keeps only newer versions, never drops one.
  const version = Object.values(sources.registryVersions).reduce((sum, each) => sum + each, 0);
  const scopes: CatalogSnapshot['scopes'] = {};
  for (const row of sources.scopes) {
    if (!isScopeName(row.id)) throw new RangeError(`scope ${JSON.stringify(row.id)} does not match <product>:<resource>:<verb>`);
    if (row.id.slice(0, row.id.indexOf(':')) !== row.product) throw new RangeError(`scope ${row.id} is not named for its product ${row.product}`);
    scopes[row.id] = { product: row.product, lifecycle: row.lifecycle, riskClass: row.riskClass, memberVisible: row.memberVisible ?? false };
  }
  const registered = Object.keys(scopes);
  const roles: CatalogSnapshot['roles'] = {};
  const platformRoles: CatalogSnapshot['platformRoles'] = {};
  for (const row of sources.roles) {
    const everything = row.kind === 'platform' && row.scopes.length === 1 && row.scopes[0] === EVERY_SCOPE;
    const roleScopes = everything ? registered : [...row.scopes];
    for (const scope of roleScopes) {
      if (!Object.hasOwn(scopes, scope)) throw new RangeError(`role ${row.id} names unregistered scope ${scope}`);
    }
    if (row.kind === 'platform') platformRoles[row.id] = { scopes: roleScopes };
    else roles[row.id] = { levels: [...row.levels], rank: row.rank, scopes: roleScopes };
  }
  return { version, registryVersions: { ...sources.registryVersions }, roles, platformRoles, scopes, publishedAt: sources.publishedAt };
}

export type ScopeEntry = CatalogSnapshot['scopes'][string];
export type UsableLifecycle = Exclude<ScopeLifecycle, 'retired'>;

const NO_SCOPES: ReadonlySet<string> = new Set();

/**
 * One catalogue snapshot with its role -> scopes sets precomputed: the
 * gateway and every subgraph consult it per field, so a check is a few map
 * lookups and never walks an array.
 */
export class Catalog {
  readonly snapshot: CatalogSnapshot;
  /**
   * Membership and platform roles are kept apart so a grant naming a platform
   * role on some node (a forged or corrupt token) carries nothing.
   */
  private readonly membershipScopes: ReadonlyMap<string, ReadonlySet<string>>;
  private readonly platformScopes: ReadonlyMap<string, ReadonlySet<string>>;

  constructor(snapshot: CatalogSnapshot) {
    this.snapshot = snapshot;
    this.membershipScopes = new Map(Object.entries(snapshot.roles).map(([role, entry]) => [role, new Set(entry.scopes)]));
    this.platformScopes = new Map(Object.entries(snapshot.platformRoles).map(([role, entry]) => [role, new Set(entry.scopes)]));
  }

  get version(): number {
    return this.snapshot.version;
  }

  scope(id: string): ScopeEntry | undefined {
    return Object.hasOwn(this.snapshot.scopes, id) ? this.snapshot.scopes[id] : undefined;
  }

  isRegistered(scope: string): boolean {
    return this.scope(scope) !== undefined;
  }

  /** The scopes a membership role carries on the node it is granted on; an unknown role carries none. */
  rolesScopes(role: string): ReadonlySet<string> {
    return this.membershipScopes.get(role) ?? NO_SCOPES;
  }

  /** The scopes a platform role carries everywhere; an unknown role carries none. */
  platformRoleScopes(role: string): ReadonlySet<string> {
    return this.platformScopes.get(role) ?? NO_SCOPES;
  }

  /** Undefined for a platform role or an unknown one: only membership roles are ranked against each other. */
  roleRank(role: string): number | undefined {
    return this.membershipRole(role)?.rank;
  }

  roleLevels(role: string): readonly Level[] {
    return this.membershipRole(role)?.levels ?? [];
  }

  /**
   * The lifecycle a check may go on with. An unregistered scope is a defect in
   * the caller (a typo, or a scope added to code before the registry) and a
   * retired one is refused outright, so both throw rather than deny.
   */
  usable(scope: string): UsableLifecycle {
    const entry = this.scope(scope);
    if (entry === undefined) {
      throw new AppError('AUTH_SCOPE_UNREGISTERED', `The scope ${scope} is not registered`, { details: { scope, catalogVersion: this.version } });
    }
    if (entry.lifecycle === 'retired') {
      throw new AppError('AUTH_SCOPE_RETIRED', `The scope ${scope} is retired`, { details: { scope, catalogVersion: this.version } });
    }
    return entry.lifecycle;
  }

  private membershipRole(role: string): CatalogSnapshot['roles'][string] | undefined {
    return Object.hasOwn(this.snapshot.roles, role) ? this.snapshot.roles[role] : undefined;
  }
}
