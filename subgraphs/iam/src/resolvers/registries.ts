import { auditEventType } from '@aifactory/contracts';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { AuditAction, RegistryLifecycle, RegistryVersion, ResourceType, Role, Scope } from '../data/registries.js';
import { connectionOf, keysetPage } from '../data/registries-pages.js';
import type { IamContext, PageArgs } from './context.js';

type IdArgs = { id: string };
type ProductArgs = PageArgs & { product?: string | null };
const byId = (row: { id: string }) => row.id;

/** The registries' GraphQL fields (schema/registries.graphql): each reads its arguments and calls RegistryService. */
export const registryResolvers: GraphQLResolverMap<IamContext> = {
  RegistryLifecycle: { ACTIVE: 'active', DEPRECATED: 'deprecated', RETIRED: 'retired' },
  RiskClass: { LOW: 'low', MEDIUM: 'medium', HIGH: 'high', CRITICAL: 'critical' },
  RetentionClass: { STANDARD: 'standard', EXTENDED: 'extended', LEGAL_HOLD: 'legal_hold' },
  RoleKind: { MEMBERSHIP: 'membership', PLATFORM: 'platform' },
  Query: {
    registryVersions: async (_root, args: PageArgs, ctx: IamContext) =>
      connectionOf(await ctx.registries.registryVersions(ctx, keysetPage(args)), (row: RegistryVersion) => row.name),
    products: async (_root, args: PageArgs, ctx: IamContext) => connectionOf(await ctx.registries.products(ctx, keysetPage(args)), byId),
    product: (_root, args: IdArgs, ctx: IamContext) => ctx.registries.product(ctx, args.id),
    scopes: async (_root, args: ProductArgs & { lifecycle?: RegistryLifecycle | null }, ctx: IamContext) =>
      connectionOf(await ctx.registries.scopes(ctx, { productId: args.product, lifecycle: args.lifecycle }, keysetPage(args)), byId),
    scope: (_root, args: IdArgs, ctx: IamContext) => ctx.registries.scope(ctx, args.id),
    resourceTypes: async (_root, args: ProductArgs, ctx: IamContext) =>
      connectionOf(await ctx.registries.resourceTypes(ctx, { productId: args.product }, keysetPage(args)), byId),
    auditActions: async (_root, args: ProductArgs, ctx: IamContext) =>
      connectionOf(await ctx.registries.auditActions(ctx, { productId: args.product }, keysetPage(args)), byId),
    roles: async (_root, args: PageArgs, ctx: IamContext) => connectionOf(await ctx.registries.roles(ctx, keysetPage(args)), byId),
    role: (_root, args: IdArgs, ctx: IamContext) => ctx.registries.role(ctx, args.id),
  },
  Mutation: {
    registerProduct: (_root, args: { input: { id: string; displayName: string; owner: string } }, ctx: IamContext) =>
      ctx.registries.registerProduct(ctx, args.input),
    registerScope: (_root, args: { input: Parameters<IamContext['registries']['registerScope']>[1] }, ctx: IamContext) =>
      ctx.registries.registerScope(ctx, args.input),
    setScopeLifecycle: (_root, args: { scope: string; lifecycle: RegistryLifecycle }, ctx: IamContext) => ctx.registries.setScopeLifecycle(ctx, args),
    registerResourceType: (_root, args: { input: Parameters<IamContext['registries']['registerResourceType']>[1] }, ctx: IamContext) =>
      ctx.registries.registerResourceType(ctx, args.input),
    registerAuditAction: (_root, args: { input: Parameters<IamContext['registries']['registerAuditAction']>[1] }, ctx: IamContext) =>
      ctx.registries.registerAuditAction(ctx, args.input),
    setRoleScopes: (_root, args: { role: string; scopes: string[] }, ctx: IamContext) => ctx.registries.setRoleScopes(ctx, args),
  },
  Scope: {
    product: (scope: Scope, _args, ctx: IamContext) => ctx.registries.product(ctx, scope.productId),
  },
  ResourceType: {
    product: (type: ResourceType, _args, ctx: IamContext) => ctx.registries.product(ctx, type.productId),
  },
  AuditAction: {
    product: (action: AuditAction, _args, ctx: IamContext) => ctx.registries.product(ctx, action.productId),
    subject: (action: AuditAction) => auditEventType(action.id),
  },
  Role: {
    scopes: async (role: Role, args: PageArgs, ctx: IamContext) => connectionOf(await ctx.registries.scopesOfRole(ctx, role, keysetPage(args)), byId),
  },
};
