import type { PlatformRole, Principal } from '@aifactory/service-auth';
import type { EdgeIdentity } from './pomerium.js';

export type RoleGroups = Partial<Record<PlatformRole, string[]>>;

/**
 * The human principal from a verified assertion (ARCHITECTURE.md, Decisions:
 * Principal). Until IAM grants exist, platform roles come only from the
 * configured mapping of the `groups` claim; memberships come with IAM.
 */
export function principalFromIdentity(identity: EdgeIdentity, roleGroups: RoleGroups): Principal {
  const groups = new Set(identity.groups);
  const platformRoles = (Object.entries(roleGroups) as Array<[PlatformRole, string[]]>)
    .filter(([, mapped]) => mapped.some((group) => groups.has(group)))
    .map(([role]) => role)
    .sort();
  const principal: Principal = { type: 'user', subject: identity.sub, platformRoles, grants: [] };
  if (identity.email !== undefined) principal.email = identity.email;
  if (identity.name !== undefined) principal.name = identity.name;
  return principal;
}
