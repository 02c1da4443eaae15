import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { Department, Organization, Project } from '../data/hierarchy.js';
import { pageRequest } from '../domain/pagination.js';
import { rolesOn } from '../domain/visibility.js';
import type { IamContext, PageArgs } from './context.js';

type Ref = { id: string };

function placementOf(node: Organization | Department | Project) {
  if ('departmentId' in node) {
    return { level: 'project' as const, nodeId: node.id, organizationId: node.organizationId, departmentId: node.departmentId, projectId: node.id };
  }
  if ('organizationId' in node) {
    return { level: 'department' as const, nodeId: node.id, organizationId: node.organizationId, departmentId: node.id, projectId: null };
  }
  return { level: 'organization' as const, nodeId: node.id, organizationId: node.id, departmentId: null, projectId: null };
}

/** Members and invitations of any node, and the caller's own roles on it. */
function nodeFields<T extends Organization | Department | Project>() {
  return {
    myRoles: (node: T, _args: unknown, ctx: IamContext) => rolesOn(ctx, node.id),
    members: (node: T, args: PageArgs, ctx: IamContext) => ctx.memberships.membersOf(ctx, placementOf(node), pageRequest(args)),
    invitations: (node: T, args: PageArgs, ctx: IamContext) => ctx.memberships.invitationsOf(ctx, placementOf(node), pageRequest(args)),
  };
}

export const hierarchyResolvers: GraphQLResolverMap<IamContext> = {
  LifecycleStatus: { ACTIVE: 'active', ARCHIVED: 'archived' },
  Query: {
    organizations: (_root, args: PageArgs, ctx: IamContext) => ctx.hierarchy.organizations(ctx, pageRequest(args)),
    organization: (_root, args: Ref, ctx: IamContext) => ctx.hierarchy.organization(ctx, args.id),
    department: (_root, args: Ref, ctx: IamContext) => ctx.hierarchy.department(ctx, args.id),
    project: (_root, args: Ref, ctx: IamContext) => ctx.hierarchy.project(ctx, args.id),
    myOrganizations: (_root, args: PageArgs, ctx: IamContext) => ctx.hierarchy.myOrganizations(ctx, pageRequest(args)),
    myDepartments: (_root, args: PageArgs, ctx: IamContext) => ctx.hierarchy.myDepartments(ctx, pageRequest(args)),
    myProjects: (_root, args: PageArgs, ctx: IamContext) => ctx.hierarchy.myProjects(ctx, pageRequest(args)),
  },
  Mutation: {
    createOrganization: (_root, args: { input: { slug: string; name: string; billingCurrency?: string | null } }, ctx: IamContext) =>
      ctx.hierarchy.createOrganization(ctx, args.input),
    renameOrganization: (_root, args: { id: string; name: string }, ctx: IamContext) => ctx.hierarchy.renameOrganization(ctx, args),
    createDepartment: (_root, args: { organizationId: string; slug: string; name: string }, ctx: IamContext) =>
      ctx.hierarchy.createDepartment(ctx, args),
    renameDepartment: (_root, args: { id: string; name: string }, ctx: IamContext) => ctx.hierarchy.renameDepartment(ctx, args),
    archiveDepartment: (_root, args: Ref, ctx: IamContext) => ctx.hierarchy.archiveDepartment(ctx, args.id),
    createProject: (_root, args: { departmentId: string; slug: string; name: string }, ctx: IamContext) => ctx.hierarchy.createProject(ctx, args),
    renameProject: (_root, args: { id: string; name: string }, ctx: IamContext) => ctx.hierarchy.renameProject(ctx, args),
    archiveProject: (_root, args: Ref, ctx: IamContext) => ctx.hierarchy.archiveProject(ctx, args.id),
  },
  Organization: {
    __resolveReference: (ref: Ref, ctx: IamContext) => ctx.hierarchy.organization(ctx, ref.id),
    departments: (org: Organization, args: PageArgs, ctx: IamContext) => ctx.hierarchy.departmentsOf(ctx, org, pageRequest(args)),
    ...nodeFields<Organization>(),
  },
  Department: {
    __resolveReference: (ref: Ref, ctx: IamContext) => ctx.hierarchy.department(ctx, ref.id),
    organization: (dept: Department, _args, ctx: IamContext) => ctx.hierarchy.parentOrganization(dept.organizationId),
    projects: (dept: Department, args: PageArgs, ctx: IamContext) => ctx.hierarchy.projectsOf(ctx, dept, pageRequest(args)),
    ...nodeFields<Department>(),
  },
  Project: {
    __resolveReference: (ref: Ref, ctx: IamContext) => ctx.hierarchy.project(ctx, ref.id),
    department: (project: Project, _args, ctx: IamContext) => ctx.hierarchy.parentDepartment(project.departmentId),
    organization: (project: Project, _args, ctx: IamContext) => ctx.hierarchy.parentOrganization(project.organizationId),
    ...nodeFields<Project>(),
  },
};
