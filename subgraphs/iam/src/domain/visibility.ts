import type { NodeFilter } from '../data/hierarchy.js';
import type { Caller } from './caller.js';

/**
 * The nodes whose rows a list may show for one scope, from the caller's
 * grants that carry it: the same coverage `can()` decides per row (an
 * organization grant reaches the whole organization, a department grant its
 * department, a project grant its project), turned into a filter so pages
 * are cut in SQL, and nothing is audited for rows a list simply leaves out.
 */
export function reachOf(caller: Caller, scope: string): NodeFilter {
  const { catalog } = caller.access;
  const filter = { organizationIds: new Set<string>(), departmentIds: new Set<string>(), projectIds: new Set<string>() };
  for (const grant of caller.principal.grants) {
    if (!catalog.rolesScopes(grant.role).has(scope)) continue;
    if (grant.level === 'organization') filter.organizationIds.add(grant.id);
    else if (grant.level === 'department') filter.departmentIds.add(grant.id);
    else filter.projectIds.add(grant.id);
  }
  return {
    organizationIds: [...filter.organizationIds],
    departmentIds: [...filter.departmentIds],
    projectIds: [...filter.projectIds],
  };
}

/**
 * The organizations any grant of the caller lies in, for scopes every member
 * holds on the organization itself (`memberVisible`, e.g.
 * `platform:organization:read`). A grant minted without `org` names no
 * organization but its own (organization-level) id.
 */
export function organizationsOfGrants(caller: Caller, scope: string): string[] {
  const { catalog } = caller.access;
  const ids = new Set<string>();
  for (const grant of caller.principal.grants) {
    if (!catalog.rolesScopes(grant.role).has(scope)) continue;
    const organizationId = grant.level === 'organization' ? grant.id : grant.org;
    if (organizationId !== undefined) ids.add(organizationId);
  }
  return [...ids];
}

/** The roles the caller holds directly on one node (GraphQL `myRoles`). */
export function rolesOn(caller: Pick<Caller, 'principal'>, nodeId: string): string[] {
  return caller.principal.grants.filter((grant) => grant.id === nodeId).map((grant) => grant.role);
}
