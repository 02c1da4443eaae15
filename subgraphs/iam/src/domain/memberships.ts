import { z } from 'zod';
import { canChangeMembership, canGrant, forbidden, requireGrantAuthority, type GrantTarget, type GrantVerdict } from '@aifactory/authz';
import { AppError, parseInput } from '@aifactory/errors';
import type { Outbox } from '@aifactory/subgraph-kit';
import type { AccessStore, Invitation, Level, Membership, NodePlacement } from '../data/access.js';
import { isUniqueViolation, type HierarchyStore, type IamTransaction } from '../data/hierarchy.js';
import { membershipChanged } from './access-events.js';
import type { ApiKeyWriter } from './api-key-writer.js';
import { auditEvent, type AuditCaller } from './audit.js';
import { originOf, type Caller } from './caller.js';
import { membershipResource, type MembershipWriter } from './membership-writer.js';
import { connectionOf, emptyConnection, type Connection, type PageRequest } from './pagination.js';

const levelSchema = z.enum(['organization', 'department', 'project']);
const idSchema = z.uuid();
const roleSchema = z.string().regex(/^[a-z][a-z0-9_]*$/, 'must be a role id such as project_member');
const inviteInput = z.object({
  email: z.email().max(320).transform((email) => email.toLowerCase()),
  level: levelSchema,
  nodeId: idSchema,
  role: roleSchema,
});
const grantInput = z.object({ userId: idSchema, level: levelSchema, nodeId: idSchema, role: roleSchema });

const MANAGE = 'platform:member:manage';
const READ = 'platform:member:read';
const LAST_ADMIN_ROLE = 'org_admin';

/** A node of the hierarchy with its ancestors and whether it still takes new members. */
interface Node extends NodePlacement {
  active: boolean;
}

function targetOf(placement: NodePlacement): GrantTarget {
  return {
    level: placement.level,
    organizationId: placement.organizationId,
    departmentId: placement.departmentId,
    projectId: placement.projectId,
  };
}

function resourceOf(placement: NodePlacement) {
  return { organizationId: placement.organizationId, departmentId: placement.departmentId, projectId: placement.projectId };
}

/**
 * Members and invitations of organizations, departments and projects.
 * Authority comes from two places: `platform:member:manage` on the node
 * (`can()`, audited), and the escalation rule (`canGrant`), so an admin
 * grants, changes and removes only roles at or below their own. The last
 * `org_admin` of an organization can never be removed or demoted: every
 * membership change locks the organization's row first, so two concurrent
 * removals are judged one after the other.
 */
export class MembershipService {
  constructor(
    private readonly hierarchy: HierarchyStore,
    private readonly store: AccessStore,
    private readonly outbox: Outbox,
    private readonly writer: MembershipWriter,
    private readonly apiKeys: ApiKeyWriter,
  ) {}

  /** Members of a node; empty (and the refusal audited) for a caller who may not see them. */
  async membersOf(caller: Caller, placement: NodePlacement, page: PageRequest): Promise<Connection<Membership>> {
    if (!caller.access.can(READ, resourceOf(placement))) return emptyConnection();
    return connectionOf(await this.store.membershipsOn(placement.nodeId, page), page);
  }

  async invitationsOf(caller: Caller, placement: NodePlacement, page: PageRequest): Promise<Connection<Invitation>> {
    if (!caller.access.can(READ, resourceOf(placement))) return emptyConnection();
    return connectionOf(await this.store.invitationsOn(placement.nodeId, page), page);
  }

  /** A pending membership for an email: claimed when a user with that verified email first signs in. */
  async inviteMember(caller: Caller, input: { email: string; level: Level; nodeId: string; role: string }): Promise<Invitation> {
    const valid = parseInput(inviteInput, input);
    const node = await this.node(valid.level, valid.nodeId);
    this.requireAuthority(caller, node, canGrant(caller.access.catalog, caller.principal, targetOf(node), valid.role));
    if (!node.active) throw new AppError('IAM_ARCHIVED', `The ${node.level} is archived`);
    const origin = originOf(caller);
    return this.hierarchy.transaction(async (tx) => {
      await this.lockOrganization(tx, node.organizationId);
      if (await this.store.verifiedEmailHoldsRoleOn(tx, valid.email, node.nodeId)) {
        throw new AppError('IAM_DUPLICATE', 'A user with this email already holds a role there');
      }
      const invitation = await this.store
        .createInvitation(tx, { ...placementOf(node), email: valid.email, role: valid.role, invitedBy: origin.actor.id })
        .catch((error: unknown) => {
          throw isUniqueViolation(error) ? new AppError('IAM_DUPLICATE', 'This email is already invited there', { cause: error }) : error;
        });
      await this.outbox.add(tx, membershipChanged(invitation, 'invited', invitation.version, origin));
      await this.outbox.add(
        tx,
        auditEvent({
          action: 'iam.invitation.create',
          outcome: 'succeeded',
          caller: origin,
          scope: MANAGE,
          resource: membershipResource(invitation, 'invitation'),
          details: { email: invitation.email, role: invitation.role, level: invitation.level, nodeId: invitation.nodeId },
        }),
      );
      return invitation;
    });
  }

  async revokeInvitation(caller: Caller, id: string): Promise<Invitation> {
    const invitationId = parseInput(idSchema, id);
    const origin = originOf(caller);
    return this.hierarchy.transaction(async (tx) => {
      const found = await this.store.findInvitation(tx, invitationId);
      if (!found) throw new AppError('NOT_FOUND', 'Invitation not found');
      this.requireAuthority(caller, found, canChangeMembership(caller.access.catalog, caller.principal, targetOf(found), found.role, null));
      await this.lockOrganization(tx, found.organizationId);
      // Claimed or revoked while we waited for the lock.
      if (!(await this.store.findInvitation(tx, invitationId))) throw new AppError('NOT_FOUND', 'Invitation not found');
      const revoked = await this.store.deleteInvitation(tx, invitationId);
      await this.outbox.add(tx, membershipChanged(revoked, 'revoked', revoked.version + 1, origin));
      await this.outbox.add(
        tx,
        auditEvent({
          action: 'iam.invitation.revoke',
          outcome: 'succeeded',
          caller: origin,
          scope: MANAGE,
          resource: membershipResource(revoked, 'invitation'),
          details: { email: revoked.email, role: revoked.role },
        }),
      );
      return revoked;
    });
  }

  /**
   * Grants the role on the node, or changes the role the user already holds
   * there (one role per user and node). Changing needs authority over the
   * current role as well as the new one.
   */
  async grantRole(caller: Caller, input: { userId: string; level: Level; nodeId: string; role: string }): Promise<Membership> {
    const valid = parseInput(grantInput, input);
    const node = await this.node(valid.level, valid.nodeId);
    this.requireAuthority(caller, node, canGrant(caller.access.catalog, caller.principal, targetOf(node), valid.role));
    if (!node.active) throw new AppError('IAM_ARCHIVED', `The ${node.level} is archived`);
    if (!(await this.store.findUser(valid.userId))) throw new AppError('NOT_FOUND', 'User not found');
    const origin = originOf(caller);
    return this.hierarchy.transaction(async (tx) => {
      await this.lockOrganization(tx, node.organizationId);
      const existing = await this.store.findMembershipOn(tx, valid.userId, node.nodeId);
      if (!existing) return this.writer.grantInTransaction(tx, origin, MANAGE, { userId: valid.userId, role: valid.role, placement: placementOf(node) });
      if (existing.role === valid.role) throw new AppError('IAM_DUPLICATE', `The user already holds ${valid.role} there`);
      this.requireAuthority(caller, node, canChangeMembership(caller.access.catalog, caller.principal, targetOf(node), existing.role, valid.role));
      await this.keepAnOrgAdmin(tx, existing);
      const changed = await this.store.changeMembershipRole(tx, existing.id, valid.role, origin.actor.id);
      await this.outbox.add(tx, membershipChanged(changed, 'changed', changed.version, origin));
      await this.outbox.add(
        tx,
        auditEvent({
          action: 'iam.membership.change',
          outcome: 'succeeded',
          caller: origin,
          scope: MANAGE,
          resource: membershipResource(changed, 'membership'),
          details: { userId: changed.userId, role: changed.role, previousRole: existing.role, level: changed.level, nodeId: changed.nodeId },
        }),
      );
      await this.writer.userAccessChanged(tx, changed.userId, origin);
      return changed;
    });
  }

  async removeMembership(caller: Caller, id: string): Promise<Membership> {
    const membershipId = parseInput(idSchema, id);
    const origin = originOf(caller);
    return this.hierarchy.transaction(async (tx) => {
      const found = await this.store.findMembership(tx, membershipId);
      if (!found) throw new AppError('NOT_FOUND', 'Membership not found');
      this.requireAuthority(caller, found, canChangeMembership(caller.access.catalog, caller.principal, targetOf(found), found.role, null));
      await this.lockOrganization(tx, found.organizationId);
      // Re-read under the lock: a concurrent change may have removed it or changed its role.
      const current = await this.store.findMembership(tx, membershipId);
      if (!current) throw new AppError('NOT_FOUND', 'Membership not found');
      if (current.role !== found.role) {
        this.requireAuthority(caller, current, canChangeMembership(caller.access.catalog, caller.principal, targetOf(current), current.role, null));
      }
      await this.keepAnOrgAdmin(tx, current);
      const removed = await this.store.deleteMembership(tx, membershipId);
      await this.outbox.add(tx, membershipChanged(removed, 'removed', removed.version + 1, origin));
      await this.outbox.add(
        tx,
        auditEvent({
          action: 'iam.membership.remove',
          outcome: 'succeeded',
          caller: origin,
          scope: MANAGE,
          resource: membershipResource(removed, 'membership'),
          details: { userId: removed.userId, role: removed.role, level: removed.level, nodeId: removed.nodeId },
        }),
      );
      await this.writer.userAccessChanged(tx, removed.userId, origin);
      // Issue 15: a creator who no longer holds anything in the organization leaves their keys working, flagged.
      await this.apiKeys.membershipRemoved(tx, removed.userId, removed.organizationId, origin);
      return removed;
    });
  }

  /** Seeds and imports: grants the role unless the user already holds one on the node (then nothing changes). */
  async ensureMembership(origin: AuditCaller, input: { userId: string; role: string; placement: NodePlacement }): Promise<Membership> {
    return this.hierarchy.transaction(async (tx) => {
      await this.lockOrganization(tx, input.placement.organizationId);
      const existing = await this.store.findMembershipOn(tx, input.userId, input.placement.nodeId);
      return existing ?? this.writer.grantInTransaction(tx, origin, null, input);
    });
  }

  /** Refuses to take the organization's last org_admin away; the caller holds the organization's lock. */
  private async keepAnOrgAdmin(tx: IamTransaction, membership: Membership): Promise<void> {
    if (membership.role !== LAST_ADMIN_ROLE || membership.level !== 'organization') return;
    if ((await this.store.countOrgAdmins(tx, membership.organizationId)) <= 1) {
      throw new AppError('IAM_LAST_ORG_ADMIN', 'An organization keeps at least one org_admin', {
        details: { organizationId: membership.organizationId },
      });
    }
  }

  private async lockOrganization(tx: IamTransaction, organizationId: string): Promise<void> {
    if (!(await this.hierarchy.lockOrganization(tx, organizationId))) throw new AppError('NOT_FOUND', 'Organization not found');
  }

  /**
   * `platform:member:manage` on the node (a refusal is audited by `can()`),
   * then the escalation verdict. An admin elsewhere in the same organization
   * who reaches past their node (a project admin granting on the department)
   * is told it is an escalation; anyone else, that it is forbidden.
   */
  private requireAuthority(caller: Caller, placement: NodePlacement, verdict: GrantVerdict): void {
    const resource = resourceOf(placement);
    if (!caller.access.can(MANAGE, resource)) {
      if (adminInOrganization(caller, placement.organizationId)) {
        throw new AppError('AUTH_ROLE_ESCALATION', 'You cannot manage members there', { details: { scope: MANAGE } });
      }
      throw forbidden(MANAGE);
    }
    if (!verdict.allowed && verdict.code === 'AUTH_ROLE_ESCALATION') caller.access.recordDeny(MANAGE, resource, null, 'role_escalation');
    requireGrantAuthority(verdict);
  }

  /** The node with its ancestors; NOT_FOUND when no node of that level has the id. */
  private async node(level: Level, nodeId: string): Promise<Node> {
    switch (level) {
      case 'organization': {
        const organization = await this.hierarchy.findOrganization(nodeId);
        if (!organization) throw new AppError('NOT_FOUND', 'Organization not found');
        return { level, nodeId, organizationId: organization.id, departmentId: null, projectId: null, active: organization.status === 'active' };
      }
      case 'department': {
        const department = await this.hierarchy.findDepartment(nodeId);
        if (!department) throw new AppError('NOT_FOUND', 'Department not found');
        return { level, nodeId, organizationId: department.organizationId, departmentId: department.id, projectId: null, active: department.status === 'active' };
      }
      case 'project': {
        const project = await this.hierarchy.findProject(nodeId);
        if (!project) throw new AppError('NOT_FOUND', 'Project not found');
        return {
          level,
          nodeId,
          organizationId: project.organizationId,
          departmentId: project.departmentId,
          projectId: project.id,
          active: project.status === 'active',
        };
      }
      default: {
        const unknown: never = level;
        throw new AppError('BAD_REQUEST_INVALID_INPUT', `Unknown level ${String(unknown)}`);
      }
    }
  }
}

const ADMIN_ROLES: ReadonlySet<string> = new Set(['org_admin', 'department_admin', 'project_admin']);

function adminInOrganization(caller: Caller, organizationId: string): boolean {
  return caller.principal.grants.some(
    (grant) => ADMIN_ROLES.has(grant.role) && (grant.level === 'organization' ? grant.id : grant.org) === organizationId,
  );
}

function placementOf(node: Node): NodePlacement {
  return { organizationId: node.organizationId, level: node.level, nodeId: node.nodeId, departmentId: node.departmentId, projectId: node.projectId };
}
