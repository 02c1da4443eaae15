import type { IamPrisma } from './database.js';
import type { Department, Organization, Prisma, Project } from '../generated/prisma/client.js';

export type { Department, Organization, Project };

/** The client of one interactive transaction: every write of a change and its outbox event go through it. */
export type IamTransaction = Prisma.TransactionClient;

/** Storage of the organization -> department -> project hierarchy. */
export class HierarchyStore {
  constructor(private readonly prisma: IamPrisma) {}

  /** Runs `work` in one Prisma interactive transaction: it commits when `work` resolves and rolls back when it throws. */
  transaction<T>(work: (tx: IamTransaction) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(work);
  }

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

  /**
   * Renames and bumps the version; a name it already has changes nothing.
   * Null when no organization has the id. The row stays locked until `tx` ends,
   * so concurrent renames get consecutive versions.
   */
  async renameOrganization(tx: IamTransaction, id: string, name: string): Promise<{ organization: Organization; changed: boolean } | null> {
    const { count } = await tx.organization.updateMany({
      where: { id, name: { not: name } },
      data: { name, version: { increment: 1 } },
    });
    const organization = await tx.organization.findUnique({ where: { id } });
    return organization ? { organization, changed: count === 1 } : null;
  }

  /** Creates the organization unless one with the slug exists (even concurrently); never changes an existing one. */
  async createOrganizationUnlessExists(
    tx: IamTransaction,
    input: { slug: string; name: string; billingCurrency: string },
  ): Promise<{ organization: Organization; created: boolean }> {
    const [created] = await tx.organization.createManyAndReturn({ data: [input], skipDuplicates: true });
    if (created) return { organization: created, created: true };
    return { organization: await tx.organization.findUniqueOrThrow({ where: { slug: input.slug } }), created: false };
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
