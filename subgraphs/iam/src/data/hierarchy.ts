import type { IamPrisma } from './database.js';
import type { Department, Organization, Project } from '../generated/prisma/client.js';

export type { Department, Organization, Project };

/** Storage of the organization -> department -> project hierarchy. */
export class HierarchyStore {
  constructor(private readonly prisma: IamPrisma) {}

  listOrganizations(): Promise<Organization[]> {
    return this.prisma.organization.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
  }

  findOrganization(id: string): Promise<Organization | null> {
    return this.prisma.organization.findUnique({ where: { id } });
  }

  findDepartment(id: string): Promise<Department | null> {
    return this.prisma.department.findUnique({ where: { id } });
  }

  findProject(id: string): Promise<Project | null> {
    return this.prisma.project.findUnique({ where: { id } });
  }

  departmentsOf(organizationId: string): Promise<Department[]> {
    return this.prisma.department.findMany({ where: { organizationId }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
  }

  projectsOf(departmentId: string): Promise<Project[]> {
    return this.prisma.project.findMany({ where: { departmentId }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
  }

  /** Null when no organization has the id. */
  async renameOrganization(id: string, name: string): Promise<Organization | null> {
    const { count } = await this.prisma.organization.updateMany({ where: { id }, data: { name } });
    return count === 0 ? null : this.prisma.organization.findUnique({ where: { id } });
  }

  /** Creates the organization unless one with the slug exists; never changes an existing one. */
  ensureOrganization(input: { slug: string; name: string; billingCurrency: string }): Promise<Organization> {
    return this.prisma.organization.upsert({ where: { slug: input.slug }, create: input, update: {} });
  }

  ensureDepartment(input: { organizationId: string; slug: string; name: string }): Promise<Department> {
    return this.prisma.department.upsert({
      where: { organizationId_slug: { organizationId: input.organizationId, slug: input.slug } },
      create: input,
      update: {},
    });
  }

  ensureProject(input: { organizationId: string; departmentId: string; slug: string; name: string }): Promise<Project> {
    return this.prisma.project.upsert({
      where: { departmentId_slug: { departmentId: input.departmentId, slug: input.slug } },
      create: input,
      update: {},
    });
  }
}
