import type { IamPrisma } from './database.js';
import type { Department, Organization, Prisma, Project } from '../generated/prisma/client.js';
import type { PageRequest } from '../domain/pagination.js';
import { keysetPage } from './keyset.js';

export type { Department, Organization, Project };

/** The client of one interactive transaction: every write of a change and its outbox event go through it. */
export type IamTransaction = Prisma.TransactionClient;

/** Which nodes a caller's grants reach: organizations whole, departments whole, single projects. */
export interface NodeFilter {
  organizationIds: readonly string[];
  departmentIds: readonly string[];
  projectIds: readonly string[];
}

/** Prisma's answer to a unique index violated by an insert or update. */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'P2002';
}

/** Storage of the organization -> department -> project hierarchy. */
export class HierarchyStore {
  constructor(private readonly prisma: IamPrisma) {}

  /** Runs `work` in one Prisma interactive transaction: it commits when `work` resolves and rolls back when it throws. */
  transaction<T>(work: (tx: IamTransaction) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(work);
  }

  /** Every organization, or only those listed. */
  listOrganizations(page: PageRequest, onlyIds: readonly string[] | null): Promise<Organization[]> {
    const { after, orderBy, take } = keysetPage(page);
    const where = onlyIds === null ? after : { AND: [after, { id: { in: [...onlyIds] } }] };
    return this.prisma.organization.findMany({ where, orderBy, take });
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

  departmentsOf(organizationId: string, page: PageRequest): Promise<Department[]> {
    const { after, orderBy, take } = keysetPage(page);
    return this.prisma.department.findMany({ where: { AND: [after, { organizationId }] }, orderBy, take });
  }

  projectsOf(departmentId: string, page: PageRequest): Promise<Project[]> {
    const { after, orderBy, take } = keysetPage(page);
    return this.prisma.project.findMany({ where: { AND: [after, { departmentId }] }, orderBy, take });
  }

  /** Departments inside the listed organizations, and the listed departments. */
  departmentsReached(filter: Omit<NodeFilter, 'projectIds'>, page: PageRequest, within: { organizationId?: string } = {}): Promise<Department[]> {
    const { after, orderBy, take } = keysetPage(page);
    const reach: Prisma.DepartmentWhereInput[] = [
      { organizationId: { in: [...filter.organizationIds] } },
      { id: { in: [...filter.departmentIds] } },
    ];
    return this.prisma.department.findMany({ where: { AND: [after, within, { OR: reach }] }, orderBy, take });
  }

  /** Projects inside the listed organizations or departments, and the listed projects. */
  projectsReached(filter: NodeFilter, page: PageRequest, within: { departmentId?: string } = {}): Promise<Project[]> {
    const { after, orderBy, take } = keysetPage(page);
    const reach: Prisma.ProjectWhereInput[] = [
      { organizationId: { in: [...filter.organizationIds] } },
      { departmentId: { in: [...filter.departmentIds] } },
      { id: { in: [...filter.projectIds] } },
    ];
    return this.prisma.project.findMany({ where: { AND: [after, within, { OR: reach }] }, orderBy, take });
  }

  /**
   * Locks the organization's row until `tx` ends. Every membership change in
   * the organization takes it first, so rules over all its memberships (the
   * last org_admin) see every concurrent change in turn.
   */
  async lockOrganization(tx: IamTransaction, id: string): Promise<boolean> {
    const rows = await tx.$queryRaw<Array<{ id: string }>>`SELECT id FROM organizations WHERE id = ${id}::uuid FOR UPDATE`;
    return rows.length === 1;
  }

  /** Locks the department's row until `tx` ends: project creation counts its projects and checks its status under it. */
  async lockDepartment(tx: IamTransaction, id: string): Promise<Department | null> {
    const rows = await tx.$queryRaw<Array<{ id: string }>>`SELECT id FROM departments WHERE id = ${id}::uuid FOR UPDATE`;
    return rows.length === 1 ? tx.department.findUnique({ where: { id } }) : null;
  }

  async lockProject(tx: IamTransaction, id: string): Promise<Project | null> {
    const rows = await tx.$queryRaw<Array<{ id: string }>>`SELECT id FROM projects WHERE id = ${id}::uuid FOR UPDATE`;
    return rows.length === 1 ? tx.project.findUnique({ where: { id } }) : null;
  }

  countActiveProjects(tx: IamTransaction, departmentId: string): Promise<number> {
    return tx.project.count({ where: { departmentId, status: 'active' } });
  }

  createOrganization(tx: IamTransaction, input: { slug: string; name: string; billingCurrency: string }): Promise<Organization> {
    return tx.organization.create({ data: input });
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

  createDepartment(tx: IamTransaction, input: { organizationId: string; slug: string; name: string }): Promise<Department> {
    return tx.department.create({ data: input });
  }

  /** Null when nothing changed (same name, or already in that state). */
  async updateDepartment(tx: IamTransaction, id: string, change: { name?: string; status?: 'archived' }): Promise<Department | null> {
    const { count } = await tx.department.updateMany({
      where: { id, NOT: change },
      data: { ...change, version: { increment: 1 } },
    });
    return count === 1 ? tx.department.findUniqueOrThrow({ where: { id } }) : null;
  }

  createProject(tx: IamTransaction, input: { organizationId: string; departmentId: string; slug: string; name: string }): Promise<Project> {
    return tx.project.create({ data: input });
  }

  async updateProject(tx: IamTransaction, id: string, change: { name?: string; status?: 'archived' }): Promise<Project | null> {
    const { count } = await tx.project.updateMany({
      where: { id, NOT: change },
      data: { ...change, version: { increment: 1 } },
    });
    return count === 1 ? tx.project.findUniqueOrThrow({ where: { id } }) : null;
  }

  /** Finds by slug inside its organization, for idempotent seeds. */
  findDepartmentBySlug(tx: IamTransaction, organizationId: string, slug: string): Promise<Department | null> {
    return tx.department.findUnique({ where: { organizationId_slug: { organizationId, slug } } });
  }

  findProjectBySlug(tx: IamTransaction, departmentId: string, slug: string): Promise<Project | null> {
    return tx.project.findUnique({ where: { departmentId_slug: { departmentId, slug } } });
  }
}
