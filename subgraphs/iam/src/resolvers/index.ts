import { DateTimeScalar, type SubgraphContext } from '@aifactory/subgraph-kit';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { HierarchyService } from '../domain/hierarchy.js';
import type { Department, Organization, Project } from '../data/hierarchy.js';

export interface IamContext extends SubgraphContext {
  hierarchy: HierarchyService;
}

type Ref = { id: string };

export const resolvers: GraphQLResolverMap<IamContext> = {
  DateTime: DateTimeScalar,
  LifecycleStatus: { ACTIVE: 'active', ARCHIVED: 'archived' },
  Query: {
    organizations: (_root, _args, ctx: IamContext) => ctx.hierarchy.listOrganizations(ctx.principal),
    organization: (_root, args: Ref, ctx: IamContext) => ctx.hierarchy.organization(ctx.principal, args.id),
  },
  Mutation: {
    renameOrganization: (_root, args: { id: string; name: string }, ctx: IamContext) => ctx.hierarchy.renameOrganization(ctx, args),
  },
  Organization: {
    __resolveReference: (ref: Ref, ctx: IamContext) => ctx.hierarchy.organization(ctx.principal, ref.id),
    departments: (org: Organization, _args, ctx: IamContext) => ctx.hierarchy.departmentsOf(ctx.principal, org.id),
  },
  Department: {
    __resolveReference: (ref: Ref, ctx: IamContext) => ctx.hierarchy.department(ctx.principal, ref.id),
    organization: (dept: Department, _args, ctx: IamContext) => ctx.hierarchy.organization(ctx.principal, dept.organizationId),
    projects: (dept: Department, _args, ctx: IamContext) => ctx.hierarchy.projectsOf(ctx.principal, dept.id),
  },
  Project: {
    __resolveReference: (ref: Ref, ctx: IamContext) => ctx.hierarchy.project(ctx.principal, ref.id),
    department: (project: Project, _args, ctx: IamContext) => ctx.hierarchy.department(ctx.principal, project.departmentId),
    organization: (project: Project, _args, ctx: IamContext) => ctx.hierarchy.organization(ctx.principal, project.organizationId),
  },
};
