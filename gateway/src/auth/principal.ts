import type { PrincipalEntry } from '@aifactory/authz';
import type { Grant, PlatformRole, Principal } from '@aifactory/service-auth';

export type RoleGroups = Partial<Record<PlatformRole, string[]>>;

/**
 * Platform roles from the assertion's `groups` claim through the configured
 * mapping (ARCHITECTURE.md, Decisions: Principal): how the first platform
 * admin exists before IAM has granted anyone anything.
 */
export function platformRolesFromGroups(groups: readonly string[], roleGroups: RoleGroups): PlatformRole[] {
  const held = new Set(groups);
  return (Object.entries(roleGroups) as Array<[PlatformRole, string[]]>)
    .filter(([, mapped]) => mapped.some((group) => held.has(group)))
    .map(([role]) => role);
}

/**
 * The human principal the subgraphs see: IAM's user id as subject, platform
 * roles from IAM and from the groups mapping together, and every membership
 * with its organization and department so a subgraph decides coverage
 * without asking IAM (plan-iam.md, Grant in the internal JWT).
 */
export function principalFromEntry(entry: PrincipalEntry, groupRoles: readonly PlatformRole[], registryVersion: number | undefined): Principal {
  const platformRoles = [...new Set([...groupRoles, ...entry.platformRoles])].sort();
  const grants: Grant[] = entry.grants.map((grant) => ({
    level: grant.level,
    id: grant.id,
    role: grant.role,
    org: grant.organizationId,
    dept: grant.departmentId,
  }));
  const principal: Principal = { type: 'user', subject: entry.userId, platformRoles, grants };
  if (entry.email !== null) principal.email = entry.email;
  if (entry.name !== null) principal.name = entry.name;
  if (registryVersion !== undefined) principal.registryVersion = registryVersion;
  return principal;
}
