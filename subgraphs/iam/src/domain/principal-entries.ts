import type { AccessGrant, PrincipalEntry } from '@aifactory/authz';
import type { UserWithAccess } from '../data/access.js';

/**
 * A user as the access read model carries them (packages/authz model.ts):
 * their platform roles and every membership with the organization and
 * department it lies in, so the gateway decides coverage without IAM. Its
 * version is the user's access version, which the KV keeps only when it grows.
 */
export function principalEntryOf(user: UserWithAccess): PrincipalEntry {
  const grants: AccessGrant[] = user.memberships
    .slice()
    .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.id.localeCompare(b.id))
    .map((membership) => ({
      level: membership.level,
      id: membership.nodeId,
      role: membership.role,
      organizationId: membership.organizationId,
      departmentId: membership.departmentId,
    }));
  return {
    userId: user.id,
    issuer: user.issuer,
    subject: user.subject,
    email: user.email,
    emailVerified: user.emailVerified,
    name: user.name,
    platformRoles: user.platformRoles.map((grant) => grant.role).sort(),
    grants,
    version: user.accessVersion,
    updatedAt: user.updatedAt.toISOString(),
  };
}
