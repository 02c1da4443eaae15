import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { Level, Membership, User } from '../data/access.js';
import type { IamContext } from './context.js';

type NodeArgs = { level: Level; nodeId: string; role: string };

export const memberResolvers: GraphQLResolverMap<IamContext> = {
  MembershipLevel: { ORGANIZATION: 'organization', DEPARTMENT: 'department', PROJECT: 'project' },
  PlatformRole: { PLATFORM_ADMIN: 'platform_admin', INTERNAL_DEVELOPER: 'internal_developer' },
  Query: {
    me: (_root, _args, ctx: IamContext) => ctx.users.me(ctx.principal),
  },
  Mutation: {
    inviteMember: (_root, args: NodeArgs & { email: string }, ctx: IamContext) => ctx.memberships.inviteMember(ctx, args),
    revokeInvitation: (_root, args: { id: string }, ctx: IamContext) => ctx.memberships.revokeInvitation(ctx, args.id),
    grantRole: (_root, args: NodeArgs & { userId: string }, ctx: IamContext) => ctx.memberships.grantRole(ctx, args),
    removeMembership: (_root, args: { membershipId: string }, ctx: IamContext) => ctx.memberships.removeMembership(ctx, args.membershipId),
    grantPlatformRole: (_root, args: { userId: string; role: string }, ctx: IamContext) => ctx.users.grantPlatformRole(ctx, args),
    revokePlatformRole: (_root, args: { userId: string; role: string }, ctx: IamContext) => ctx.users.revokePlatformRole(ctx, args),
  },
  User: {
    platformRoles: (user: User, _args, ctx: IamContext) => ctx.users.platformRolesOf(user.id),
  },
  Membership: {
    // A membership row always has its user (foreign key); the non-null schema type relies on it.
    user: (membership: Membership, _args, ctx: IamContext) => ctx.users.user(membership.userId),
  },
};
