import { z } from 'zod';
import type { PrincipalEntry } from '@aifactory/authz';
import { AppError, parseInput } from '@aifactory/errors';
import { PLATFORM_ROLES, type PlatformRole, type Principal } from '@aifactory/service-auth';
import type { Outbox } from '@aifactory/subgraph-kit';
import type { AccessStore, Invitation, User } from '../data/access.js';
import type { HierarchyStore, IamTransaction } from '../data/hierarchy.js';
import { membershipChanged, userChanged } from './access-events.js';
import { auditEvent, type AuditCaller } from './audit.js';
import { originOf, type Caller } from './caller.js';
import { membershipResource, type MembershipWriter } from './membership-writer.js';
import { principalEntryOf } from './principal-entries.js';

export const signInSchema = z.object({
  issuer: z.string().min(1).max(1000),
  subject: z.string().min(1).max(1000),
  email: z.email().max(320).optional(),
  emailVerified: z.boolean(),
  name: z.string().trim().min(1).max(200).optional(),
});
export type SignIn = z.infer<typeof signInSchema>;

const platformRoleInput = z.object({ userId: z.uuid(), role: z.enum(PLATFORM_ROLES) });
const PLATFORM_ROLE_SCOPE = 'platform:platform_role:manage';

/**
 * Users: created or updated on first sight from the verified edge identity,
 * claiming the invitations their verified email was sent; and their
 * platform roles.
 */
export class UserService {
  constructor(
    private readonly hierarchy: HierarchyStore,
    private readonly store: AccessStore,
    private readonly outbox: Outbox,
    private readonly writer: MembershipWriter,
  ) {}

  /** The calling human; null for services and API keys, and for a user the gateway has not signed in yet. */
  me(principal: Principal): Promise<User | null> {
    return this.store.userOfPrincipal(principal);
  }

  user(id: string): Promise<User | null> {
    return this.store.findUser(id);
  }

  platformRolesOf(userId: string): Promise<PlatformRole[]> {
    return this.store.platformRolesOf(userId);
  }

  /**
   * The gateway's call on a human's first request (and whenever it does not
   * know them): creates or updates the user and claims every pending
   * invitation to their email, if and only if the identity provider verified
   * it, all in one transaction with the events. A changed email, name or
   * verification bumps the access version; so does every claim.
   */
  async signIn(origin: AuditCaller, input: unknown): Promise<PrincipalEntry> {
    const valid = parseInput(signInSchema, input);
    const profile = { email: valid.email ?? null, emailVerified: valid.emailVerified, name: valid.name ?? null };
    // The user is the actor of their own sign-in; the gateway only relays it.
    const actor: AuditCaller = { actor: { type: 'user', id: valid.subject }, correlationId: origin.correlationId };
    return this.hierarchy.transaction(async (tx) => {
      const { user: found, created } = await this.store.upsertUserLocked(tx, valid.issuer, valid.subject, profile);
      const changed = !created && (found.email !== profile.email || found.emailVerified !== profile.emailVerified || found.name !== profile.name);
      const claimable = profile.emailVerified && profile.email !== null ? await this.store.lockInvitationsFor(tx, profile.email.toLowerCase()) : [];
      const claimed: Invitation[] = [];
      for (const invitation of claimable) {
        if (await this.claim(tx, actor, found, invitation)) claimed.push(invitation);
      }
      const user = changed || claimed.length > 0 ? await this.store.updateProfile(tx, found.id, profile) : found;
      if (created || changed || claimed.length > 0) {
        await this.outbox.add(tx, userChanged(user, await this.store.platformRolesOf(user.id, tx), actor));
      }
      if (created || changed) {
        await this.outbox.add(
          tx,
          auditEvent({
            action: created ? 'iam.user.create' : 'iam.user.update',
            outcome: 'succeeded',
            caller: actor,
            scope: null,
            resource: null,
            details: { userId: user.id, issuer: user.issuer, emailVerified: user.emailVerified, claimedInvitations: claimed.length },
          }),
        );
      }
      const entry = await this.store.findUserWithAccess(user.id, tx);
      return principalEntryOf(entry!);
    });
  }

  /**
   * The invitation becomes a membership with the same id, one version on.
   * Where the user already holds a role on that node the invitation is only
   * withdrawn: one role per user and node.
   */
  private async claim(tx: IamTransaction, origin: AuditCaller, user: User, invitation: Invitation): Promise<boolean> {
    await this.store.deleteInvitation(tx, invitation.id);
    if (await this.store.findMembershipOn(tx, user.id, invitation.nodeId)) {
      await this.outbox.add(tx, membershipChanged(invitation, 'revoked', invitation.version + 1, origin));
      return false;
    }
    const membership = await this.store.createMembership(tx, {
      id: invitation.id,
      organizationId: invitation.organizationId,
      level: invitation.level,
      nodeId: invitation.nodeId,
      departmentId: invitation.departmentId,
      projectId: invitation.projectId,
      role: invitation.role,
      userId: user.id,
      version: invitation.version + 1,
      grantedBy: invitation.invitedBy ?? origin.actor.id,
    });
    await this.outbox.add(tx, membershipChanged(membership, 'claimed', membership.version, origin));
    await this.outbox.add(
      tx,
      auditEvent({
        action: 'iam.invitation.claim',
        outcome: 'succeeded',
        caller: origin,
        scope: null,
        resource: membershipResource(membership, 'membership'),
        details: { userId: user.id, email: invitation.email, role: membership.role, level: membership.level, nodeId: membership.nodeId },
      }),
    );
    return true;
  }

  grantPlatformRole(caller: Caller, input: { userId: string; role: string }): Promise<User> {
    return this.changePlatformRole(caller, input, 'grant');
  }

  revokePlatformRole(caller: Caller, input: { userId: string; role: string }): Promise<User> {
    return this.changePlatformRole(caller, input, 'revoke');
  }

  private async changePlatformRole(caller: Caller, input: { userId: string; role: string }, change: 'grant' | 'revoke'): Promise<User> {
    const valid = parseInput(platformRoleInput, input);
    caller.access.requireHolds(PLATFORM_ROLE_SCOPE);
    const origin = originOf(caller);
    return this.hierarchy.transaction(async (tx) => {
      if (!(await this.store.findUserWithAccess(valid.userId, tx))) throw new AppError('NOT_FOUND', 'User not found');
      if (change === 'grant' && !(await this.store.addPlatformRole(tx, valid.userId, valid.role, origin.actor.id))) {
        throw new AppError('IAM_DUPLICATE', `The user already holds ${valid.role}`);
      }
      if (change === 'revoke' && !(await this.store.removePlatformRole(tx, valid.userId, valid.role))) {
        throw new AppError('NOT_FOUND', `The user does not hold ${valid.role}`);
      }
      const user = await this.writer.userAccessChanged(tx, valid.userId, origin);
      await this.outbox.add(
        tx,
        auditEvent({
          action: change === 'grant' ? 'iam.platform_role.grant' : 'iam.platform_role.revoke',
          outcome: 'succeeded',
          caller: origin,
          scope: PLATFORM_ROLE_SCOPE,
          resource: null,
          details: { userId: valid.userId, role: valid.role },
        }),
      );
      return user;
    });
  }
}
