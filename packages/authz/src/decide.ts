import type { Grant, Principal } from '@aifactory/service-auth';
import type { Catalog, UsableLifecycle } from './catalog.js';
import type { AuthzResource } from './model.js';

export type DenyReason = 'scope_not_held' | 'resource_not_covered';

/**
 * The answer to one check. `lifecycle` is reported on every answer so the
 * caller can flag a deprecated scope whether or not it was allowed.
 */
export type Decision =
  | { allowed: true; lifecycle: UsableLifecycle }
  | { allowed: false; lifecycle: UsableLifecycle; reason: DenyReason };

/**
 * Whether the principal holds the scope anywhere at all: the `@scopes`
 * directive's coarse gate, before any row is loaded. Throws like
 * `catalog.usable` for an unregistered or retired scope.
 */
export function holdsScope(catalog: Catalog, principal: Principal, scope: string): Decision {
  const lifecycle = catalog.usable(scope);
  if (principal.type === 'service_account' || principal.type === 'service') {
    return decided(principal.scopes?.includes(scope) === true, lifecycle, 'scope_not_held');
  }
  if (platformRolesHold(catalog, principal, scope)) return { allowed: true, lifecycle };
  for (const grant of principal.grants) {
    if (catalog.rolesScopes(grant.role).has(scope)) return { allowed: true, lifecycle };
  }
  return { allowed: false, lifecycle, reason: 'scope_not_held' };
}

/**
 * Whether the principal holds the scope on this resource (plan-iam.md,
 * Coverage). Platform roles are resource-independent; an API key holds its
 * scopes on its own project only (and, through a member-visible scope, on
 * its own organization itself); a platform service holds its token's
 * scopes everywhere; a membership grant covers what lies under
 * its node, and a member-visible scope also covers the organization itself
 * for anyone with a grant inside it.
 */
export function can(catalog: Catalog, principal: Principal, scope: string, resource: AuthzResource): Decision {
  const lifecycle = catalog.usable(scope);
  if (principal.type === 'service_account') {
    if (principal.scopes?.includes(scope) !== true) return { allowed: false, lifecycle, reason: 'scope_not_held' };
    const onItsProject = principal.projectId !== undefined && resource.projectId === principal.projectId;
    // Like a member, a key sees its own organization itself through a member-visible scope it carries.
    const ownOrganization =
      isOrganizationLevel(resource) && principal.organizationId === resource.organizationId && catalog.scope(scope)?.memberVisible === true;
    return decided(onItsProject || ownOrganization, lifecycle, 'resource_not_covered');
  }
  // A platform service's token was minted for one audience with scopes its identity allows; it serves every organization.
  if (principal.type === 'service') return decided(principal.scopes?.includes(scope) === true, lifecycle, 'scope_not_held');
  if (platformRolesHold(catalog, principal, scope)) return { allowed: true, lifecycle };
  let held = false;
  let memberVisible: boolean | undefined;
  for (const grant of principal.grants) {
    if (!catalog.rolesScopes(grant.role).has(scope)) continue;
    held = true;
    if (grantCovers(grant, resource)) return { allowed: true, lifecycle };
    memberVisible ??= catalog.scope(scope)?.memberVisible === true;
    if (memberVisible && isOrganizationLevel(resource) && grantOrganization(grant) === resource.organizationId) {
      return { allowed: true, lifecycle };
    }
  }
  return { allowed: false, lifecycle, reason: held ? 'resource_not_covered' : 'scope_not_held' };
}

/**
 * A grant covers the resources under its node. Each level is matched on its
 * own id, so a grant minted without `org`/`dept` (an older token) still covers
 * exactly what its id names; where `org` is present it must agree as well.
 */
export function grantCovers(grant: Grant, resource: AuthzResource): boolean {
  if (grant.org !== undefined && grant.org !== resource.organizationId) return false;
  switch (grant.level) {
    case 'organization':
      return grant.id === resource.organizationId;
    case 'department':
      return resource.departmentId === grant.id;
    case 'project':
      return resource.projectId === grant.id;
    default: {
      const unknown: never = grant.level;
      throw new Error(`unknown grant level ${String(unknown)}`);
    }
  }
}

/** The grant's organization when the token says (or, for an org grant, its own id); otherwise unknown. */
function grantOrganization(grant: Grant): string | undefined {
  return grant.level === 'organization' ? grant.id : grant.org;
}

function isOrganizationLevel(resource: AuthzResource): boolean {
  return (resource.departmentId ?? null) === null && (resource.projectId ?? null) === null;
}

function platformRolesHold(catalog: Catalog, principal: Principal, scope: string): boolean {
  for (const role of principal.platformRoles) {
    if (catalog.platformRoleScopes(role).has(scope)) return true;
  }
  return false;
}

function decided(allowed: boolean, lifecycle: UsableLifecycle, reason: DenyReason): Decision {
  return allowed ? { allowed, lifecycle } : { allowed, lifecycle, reason };
}
