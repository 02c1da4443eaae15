import type { PlatformRole, Principal } from '@aifactory/service-auth';
import type { Invitation, Membership, PlatformGrant, User } from '../generated/prisma/client.js';
import type { PageRequest } from '../domain/pagination.js';
import type { IamPrisma } from './database.js';
import type { IamTransaction } from './hierarchy.js';
import { keysetPage } from './keyset.js';

export type { Invitation, Membership, PlatformGrant, User };

export type Level = Membership['level'];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Where a membership or invitation sits: the node and its ancestors, as the tables' node check wants them. */
export interface NodePlacement {
  organizationId: string;
  level: Level;
  nodeId: string;
  departmentId: string | null;
  projectId: string | null;
}

/** A user with everything the read model needs of them. */
export type UserWithAccess = User & { memberships: Membership[]; platformRoles: PlatformGrant[] };

/** Storage of users, memberships, invitations and platform grants. */
export class AccessStore {
  constructor(private readonly prisma: IamPrisma) {}

  findUser(id: string): Promise<User | null> {
    return this.prisma.user.findUnique({ where: { id } });
  }

  /**
   * The user a request's principal is. Users are keyed by issuer and
   * subject, but the internal JWT carries one `sub`: the user's id where the
   * gateway resolved it from the read model, else the identity provider's
   * subject, which names the user when exactly one issuer uses it.
   */
  async userOfPrincipal(principal: Pick<Principal, 'type' | 'subject'>): Promise<User | null> {
    if (principal.type !== 'user') return null;
    if (UUID.test(principal.subject)) {
      const byId = await this.prisma.user.findUnique({ where: { id: principal.subject } });
      if (byId) return byId;
    }
    const users = await this.prisma.user.findMany({ where: { subject: principal.subject }, take: 2 });
    return users.length === 1 ? users[0]! : null;
  }

  findUserWithAccess(id: string, db: IamTransaction | IamPrisma = this.prisma): Promise<UserWithAccess | null> {
    return db.user.findUnique({ where: { id }, include: { memberships: true, platformRoles: true } });
  }

  /** Keyset pages over every user, for a full rebuild of the read model. */
  usersWithAccess(page: PageRequest): Promise<UserWithAccess[]> {
    const { after, orderBy, take } = keysetPage(page);
    return this.prisma.user.findMany({ where: after, orderBy, take, include: { memberships: true, platformRoles: true } });
  }

  platformRolesOf(userId: string, db: IamTransaction | IamPrisma = this.prisma): Promise<PlatformRole[]> {
    return db.platformGrant
      .findMany({ where: { userId }, orderBy: { role: 'asc' } })
      .then((grants) => grants.map((grant) => grant.role));
  }

  membershipsOfUser(userId: string): Promise<Membership[]> {
    return this.prisma.membership.findMany({ where: { userId }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
  }

  membershipsOn(nodeId: string, page: PageRequest): Promise<Membership[]> {
    const { after, orderBy, take } = keysetPage(page);
    return this.prisma.membership.findMany({ where: { AND: [after, { nodeId }] }, orderBy, take });
  }

  invitationsOn(nodeId: string, page: PageRequest): Promise<Invitation[]> {
    const { after, orderBy, take } = keysetPage(page);
    return this.prisma.invitation.findMany({ where: { AND: [after, { nodeId }] }, orderBy, take });
  }

  findMembership(tx: IamTransaction, id: string): Promise<Membership | null> {
    return tx.membership.findUnique({ where: { id } });
  }

  findMembershipOn(tx: IamTransaction, userId: string, nodeId: string): Promise<Membership | null> {
    return tx.membership.findUnique({ where: { userId_nodeId: { userId, nodeId } } });
  }

  findInvitation(tx: IamTransaction, id: string): Promise<Invitation | null> {
    return tx.invitation.findUnique({ where: { id } });
  }

  findInvitationOn(tx: IamTransaction, email: string, nodeId: string): Promise<Invitation | null> {
    return tx.invitation.findUnique({ where: { email_nodeId: { email, nodeId } } });
  }

  /** Whether a user whose verified email is this one already holds a role on the node. */
  async verifiedEmailHoldsRoleOn(tx: IamTransaction, email: string, nodeId: string): Promise<boolean> {
    const rows = await tx.$queryRaw<Array<{ id: string }>>`
      SELECT m.id FROM memberships m JOIN users u ON u.id = m.user_id
      WHERE m.node_id = ${nodeId}::uuid AND u.email_verified AND lower(u.email) = ${email} LIMIT 1`;
    return rows.length > 0;
  }

  /** Whether the user still holds any role in the organization (on it, or on one of its departments or projects). */
  async holdsAnyRoleIn(tx: IamTransaction, userId: string, organizationId: string): Promise<boolean> {
    return (await tx.membership.count({ where: { userId, organizationId }, take: 1 })) > 0;
  }

  countOrgAdmins(tx: IamTransaction, organizationId: string): Promise<number> {
    return tx.membership.count({ where: { organizationId, level: 'organization', role: 'org_admin' } });
  }

  createMembership(tx: IamTransaction, input: NodePlacement & { id?: string; userId: string; role: string; version?: number; grantedBy: string }): Promise<Membership> {
    return tx.membership.create({ data: input });
  }

  changeMembershipRole(tx: IamTransaction, id: string, role: string, grantedBy: string): Promise<Membership> {
    return tx.membership.update({ where: { id }, data: { role, grantedBy, version: { increment: 1 }, updatedAt: new Date() } });
  }

  deleteMembership(tx: IamTransaction, id: string): Promise<Membership> {
    return tx.membership.delete({ where: { id } });
  }

  createInvitation(tx: IamTransaction, input: NodePlacement & { email: string; role: string; invitedBy: string }): Promise<Invitation> {
    return tx.invitation.create({ data: input });
  }

  deleteInvitation(tx: IamTransaction, id: string): Promise<Invitation> {
    return tx.invitation.delete({ where: { id } });
  }

  /** Pending invitations for a (lower-cased) email, locked so two sign-ins cannot both claim one. */
  async lockInvitationsFor(tx: IamTransaction, email: string): Promise<Invitation[]> {
    const ids = await tx.$queryRaw<Array<{ id: string }>>`SELECT id FROM invitations WHERE email = ${email} ORDER BY created_at, id FOR UPDATE`;
    if (ids.length === 0) return [];
    return tx.invitation.findMany({ where: { id: { in: ids.map((row) => row.id) } }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
  }

  /**
   * Creates the user on first sight, or returns the existing row locked
   * until `tx` ends (so concurrent sign-ins and grants bump its access
   * version one after another).
   */
  async upsertUserLocked(tx: IamTransaction, issuer: string, subject: string, profile: { email: string | null; emailVerified: boolean; name: string | null }): Promise<{ user: User; created: boolean }> {
    const [created] = await tx.user.createManyAndReturn({ data: [{ issuer, subject, ...profile }], skipDuplicates: true });
    if (created) return { user: created, created: true };
    const rows = await tx.$queryRaw<Array<{ id: string }>>`SELECT id FROM users WHERE issuer = ${issuer} AND subject = ${subject} FOR UPDATE`;
    return { user: await tx.user.findUniqueOrThrow({ where: { id: rows[0]!.id } }), created: false };
  }

  updateProfile(tx: IamTransaction, id: string, profile: { email: string | null; emailVerified: boolean; name: string | null }): Promise<User> {
    return tx.user.update({ where: { id }, data: { ...profile, accessVersion: { increment: 1 }, updatedAt: new Date() } });
  }

  /** +1 on the user's access version: every change of their grants announces itself at the new version. */
  bumpAccessVersion(tx: IamTransaction, id: string): Promise<User> {
    return tx.user.update({ where: { id }, data: { accessVersion: { increment: 1 }, updatedAt: new Date() } });
  }

  /** False when the user already holds it. */
  async addPlatformRole(tx: IamTransaction, userId: string, role: PlatformRole, grantedBy: string): Promise<boolean> {
    const { count } = await tx.platformGrant.createMany({ data: [{ userId, role, grantedBy }], skipDuplicates: true });
    return count === 1;
  }

  /** False when the user did not hold it. */
  async removePlatformRole(tx: IamTransaction, userId: string, role: PlatformRole): Promise<boolean> {
    const { count } = await tx.platformGrant.deleteMany({ where: { userId, role } });
    return count === 1;
  }
}
