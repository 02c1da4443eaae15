import { can, Catalog, type AuthzResource, type CatalogSnapshot } from '@aifactory/authz';
import { AppError, isAppError } from '@aifactory/errors';
import type { Principal } from '@aifactory/service-auth';
import type { SubscriptionAuthorizer } from './subscription-engine.js';

export interface SubscriptionDeny {
  principal: Principal;
  scope: string;
  resource: AuthzResource;
  correlationId: string;
  reason: string;
}

export interface SubscriptionAccessOptions {
  /** The catalogue the read model holds now. */
  catalog(): CatalogSnapshot | undefined;
  /** Throws AUTH_READ_MODEL_STALE when the read model is past the principal's budget (an API key's is shorter). */
  requireFresh(principal: Principal): void;
  onDeny(deny: SubscriptionDeny): void;
}

/**
 * Fills the subscription hook from IAM's grants (issue 14, Authorization):
 * each subscription source names the scope a subscriber must hold on the
 * resource its arguments name; checked at subscribe, on every event and when
 * the subscriber's grants change, failing closed on a stale read model.
 */
export function subscriptionAccess(options: SubscriptionAccessOptions): SubscriptionAuthorizer {
  const catalogs = currentCatalog(options.catalog);
  return (principal, request) => {
    try {
      options.requireFresh(principal);
      const catalog = catalogs();
      if (catalog === undefined) return new AppError('AUTH_READ_MODEL_STALE', 'Authorization data is not loaded yet; retry shortly');
      const { scope } = request.source;
      const resource = request.source.resource(request.args);
      const decision = can(catalog, principal, scope, resource);
      if (decision.allowed) return undefined;
      options.onDeny({ principal, scope, resource, correlationId: request.correlationId, reason: decision.reason });
      return new AppError('AUTH_FORBIDDEN', 'You may not watch this', { details: { scope } });
    } catch (error) {
      return isAppError(error) ? error : new AppError('INTERNAL_ERROR', 'Internal error', { cause: error });
    }
  };
}

/** The role -> scope sets are built once per published catalogue, not per check. */
export function currentCatalog(snapshot: () => CatalogSnapshot | undefined): () => Catalog | undefined {
  let seen: CatalogSnapshot | undefined;
  let catalog: Catalog | undefined;
  return () => {
    const now = snapshot();
    if (now !== seen) {
      seen = now;
      catalog = now === undefined ? undefined : new Catalog(now);
    }
    return catalog;
  };
}
