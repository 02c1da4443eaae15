import { AppError } from '@aifactory/errors';
import { hasPlatformRole, type Principal } from '@aifactory/service-auth';
import type { Catalog } from './catalog.js';
import { grantCovers } from './decide.js';
import { LEVELS, type Level, type MembershipRole } from './model.js';

/** The node a membership is granted on, with its ancestors' ids. */
export interface GrantTarget {
  level: Level;
  organizationId: string;
  departmentId: string | null;
  projectId: string | null;
}

export type GrantVerdict =
  | { allowed: true }
  | { allowed: false; code: 'AUTH_ROLE_ESCALATION' | 'IAM_INVALID_ROLE_LEVEL'; message: string };

/**
 * Only these roles confer authority over memberships (plan-iam.md,
 * Escalation): a project_member outranks a viewer yet grants nothing.
 */
const ADMIN_ROLES: ReadonlySet<MembershipRole> = new Set(['org_admin', 'department_admin', 'project_admin']);

const ALLOWED: GrantVerdict = Object.freeze({ allowed: true });

/**
 * The one escalation rule: an admin grants only roles at or below their own
 * authority. platform_admin may grant anything anywhere; anyone else needs an
 * admin grant that covers the target node, ranks at least as high as the
 * role, and sits at or above the target's level. A role not allowed at the
 * target's level is refused first, whoever asks, because it is a bad request
 * rather than a missing right.
 */
export function canGrant(catalog: Catalog, principal: Principal, target: GrantTarget, role: string): GrantVerdict {
  const levels = catalog.roleLevels(role);
  if (!levels.includes(target.level)) {
    return {
      allowed: false,
      code: 'IAM_INVALID_ROLE_LEVEL',
      message: levels.length === 0 ? `${role} is not a membership role` : `${role} can be granted at ${levels.join(', ')} level only`,
    };
  }
  if (hasPlatformRole(principal, 'platform_admin')) return ALLOWED;
  const rank = catalog.roleRank(role) ?? Number.POSITIVE_INFINITY;
  const resource = { organizationId: target.organizationId, departmentId: target.departmentId, projectId: target.projectId };
  for (const grant of principal.grants) {
    if (!ADMIN_ROLES.has(grant.role as MembershipRole)) continue;
    const grantRank = catalog.roleRank(grant.role);
    if (grantRank === undefined || grantRank < rank) continue;
    if (depth(grant.level) > depth(target.level)) continue;
    if (grantCovers(grant, resource)) return ALLOWED;
  }
  return { allowed: false, code: 'AUTH_ROLE_ESCALATION', message: `You cannot grant ${role} here` };
}

/**
 * Changing or removing a membership needs the same authority over its
 * current role as granting it would, and over the new role if there is one,
 * so nobody demotes (or removes) someone above them.
 */
export function canChangeMembership(
  catalog: Catalog,
  principal: Principal,
  target: GrantTarget,
  currentRole: string,
  newRole: string | null,
): GrantVerdict {
  const overCurrent = canGrant(catalog, principal, target, currentRole);
  if (!overCurrent.allowed || newRole === null) return overCurrent;
  return canGrant(catalog, principal, target, newRole);
}

/** Throws the verdict's AppError when it is a refusal. */
export function requireGrantAuthority(verdict: GrantVerdict): void {
  if (!verdict.allowed) throw new AppError(verdict.code, verdict.message);
}

function depth(level: Level): number {
  return LEVELS.indexOf(level);
}
