import { AppError, isAppError } from '@aifactory/errors';
import type { Principal } from '@aifactory/service-auth';
import type { Catalog } from './catalog.js';
import { can, holdsScope, type Decision } from './decide.js';
import type { DenyAuditor } from './deny-audit.js';
import type { AuthzResource } from './model.js';

export interface AccessOptions {
  principal: Principal;
  catalog: Catalog;
  correlationId: string;
  denies: DenyAuditor;
  /** Called once per deprecated scope per request; `deprecatedScopeReporter` counts and logs it. */
  onDeprecated?: (scope: string) => void;
}

/**
 * One request's authorization: the principal and the catalogue it is judged
 * by, with every refusal audited. Resolvers and domain services ask it
 * instead of calling `can` themselves, so no deny goes unrecorded.
 */
export class Access {
  readonly principal: Principal;
  readonly catalog: Catalog;
  readonly correlationId: string;
  private readonly denies: DenyAuditor;
  private readonly onDeprecated: ((scope: string) => void) | undefined;
  /** The directive asks per field, often for the same scope on every item of a list. */
  private readonly held = new Map<string, boolean>();
  private readonly flagged = new Set<string>();

  constructor(options: AccessOptions) {
    this.principal = options.principal;
    this.catalog = options.catalog;
    this.correlationId = options.correlationId;
    this.denies = options.denies;
    this.onDeprecated = options.onDeprecated;
  }

  /**
   * Whether the principal holds the scope anywhere: a probe, not a gate, so
   * a false answer records nothing. Throws for an unregistered or retired scope.
   */
  holds(scope: string): boolean {
    const known = this.held.get(scope);
    if (known !== undefined) return known;
    const decision = holdsScope(this.catalog, this.principal, scope);
    this.flagDeprecated(decision, scope);
    this.held.set(scope, decision.allowed);
    return decision.allowed;
  }

  /** Whether the principal holds the scope on this resource; a refusal is audited. */
  can(scope: string, resource: AuthzResource, resourceId: string | null = null): boolean {
    const decision = this.refusingRetired(scope, resource, resourceId, () => can(this.catalog, this.principal, scope, resource));
    this.flagDeprecated(decision, scope);
    if (decision.allowed) return true;
    this.recordDeny(scope, resource, resourceId, decision.reason);
    return false;
  }

  /** Like `can`, but refuses with AUTH_FORBIDDEN. */
  require(scope: string, resource: AuthzResource, resourceId: string | null = null): void {
    if (!this.can(scope, resource, resourceId)) throw forbidden(scope);
  }

  /** The coarse gate for operations without a resource (platform-wide ones): the scope held anywhere. */
  requireHolds(scope: string): void {
    if (this.refusingRetired(scope, null, null, () => this.holds(scope))) return;
    this.recordDeny(scope, null, null, 'scope_not_held');
    throw forbidden(scope);
  }

  /** Audits a refusal decided elsewhere (the `@scopes` directive). */
  recordDeny(scope: string | null, resource: AuthzResource | null, resourceId: string | null, reason: string): void {
    this.denies.record({
      principal: this.principal,
      scope,
      resource,
      resourceId,
      correlationId: this.correlationId,
      reason,
      registryVersions: this.catalog.snapshot.registryVersions,
    });
  }

  /** A retired scope is refused for everyone: audited like any deny, then thrown as catalog.usable throws it. */
  private refusingRetired<T>(scope: string, resource: AuthzResource | null, resourceId: string | null, check: () => T): T {
    try {
      return check();
    } catch (error) {
      if (isAppError(error) && error.code === 'AUTH_SCOPE_RETIRED') this.recordDeny(scope, resource, resourceId, 'scope_retired');
      throw error;
    }
  }

  private flagDeprecated(decision: Decision, scope: string): void {
    if (decision.lifecycle !== 'deprecated' || this.flagged.has(scope)) return;
    this.flagged.add(scope);
    this.onDeprecated?.(scope);
  }
}

/** Names the missing scope, which is safe: scopes are public registry entries. */
export function forbidden(scope: string): AppError {
  return new AppError('AUTH_FORBIDDEN', `Missing permission ${scope}`, { details: { scope } });
}
