import type { RegistryChangedPayload } from '@aifactory/contracts';
import type { IamPrisma } from './database.js';
import { pageOf, type KeysetPage, type Page } from './registries-pages.js';
import type {
  AuditAction,
  Prisma,
  Product,
  RegistryLifecycle,
  RegistryVersion,
  ResourceType,
  Role,
  Scope,
} from '../generated/prisma/client.js';

export type { AuditAction, Product, RegistryLifecycle, RegistryVersion, ResourceType, Role, Scope };

/** The versioned registries; `policy` in registry_versions counts policy snapshots and is not one of them. */
export type RegistryName = RegistryChangedPayload['registry'];

/** The client of one interactive transaction: every write of a change and its outbox events go through it. */
export type RegistryTransaction = Prisma.TransactionClient;

export interface ScopeFilter {
  productId?: string | null;
  lifecycle?: RegistryLifecycle | null;
}

export interface ProductFilter {
  productId?: string | null;
}

/** What the catalogue snapshot is built from, read at one instant. */
export interface CatalogRows {
  versions: RegistryVersion[];
  scopes: Scope[];
  roles: Array<Role & { scopes: Array<{ scopeId: string }> }>;
}

const after = (page: KeysetPage) => (page.afterKey === null ? {} : { gt: page.afterKey });

/** Storage of the product, scope, resource-type, audit-action and role registries and their versions. */
export class RegistryStore {
  constructor(private readonly prisma: IamPrisma) {}

  /** Runs `work` in one Prisma interactive transaction: it commits when `work` resolves and rolls back when it throws. */
  transaction<T>(work: (tx: RegistryTransaction) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(work);
  }

  /**
   * +1 on the registry's version row. The UPDATE holds the row's lock until
   * the transaction ends, so concurrent changes to one registry get
   * consecutive versions in commit order.
   */
  async bumpVersion(tx: RegistryTransaction, name: RegistryName | 'policy'): Promise<number> {
    const rows = await tx.$queryRaw<Array<{ version: number }>>`
      UPDATE registry_versions SET version = version + 1 WHERE name = ${name} RETURNING version`;
    const row = rows[0];
    if (row === undefined) throw new RangeError(`registry_versions has no row ${name}: migration 0003 inserts every one`);
    return row.version;
  }

  async versions(): Promise<Record<string, number>> {
    const rows = await this.prisma.registryVersion.findMany();
    return Object.fromEntries(rows.map((row) => [row.name, row.version]));
  }

  async listVersions(page: KeysetPage): Promise<Page<RegistryVersion>> {
    const rows = await this.prisma.registryVersion.findMany({
      where: { name: after(page) },
      orderBy: { name: 'asc' },
      take: page.limit + 1,
    });
    return pageOf(rows, page);
  }

  async listProducts(page: KeysetPage): Promise<Page<Product>> {
    const rows = await this.prisma.product.findMany({ where: { id: after(page) }, orderBy: { id: 'asc' }, take: page.limit + 1 });
    return pageOf(rows, page);
  }

  findProduct(id: string, tx: RegistryTransaction | IamPrisma = this.prisma): Promise<Product | null> {
    return tx.product.findUnique({ where: { id } });
  }

  async listScopes(filter: ScopeFilter, page: KeysetPage): Promise<Page<Scope>> {
    const rows = await this.prisma.scope.findMany({
      where: {
        id: after(page),
        ...(filter.productId == null ? {} : { productId: filter.productId }),
        ...(filter.lifecycle == null ? {} : { lifecycle: filter.lifecycle }),
      },
      orderBy: { id: 'asc' },
      take: page.limit + 1,
    });
    return pageOf(rows, page);
  }

  findScope(id: string, tx: RegistryTransaction | IamPrisma = this.prisma): Promise<Scope | null> {
    return tx.scope.findUnique({ where: { id } });
  }

  findScopes(tx: RegistryTransaction, ids: readonly string[]): Promise<Scope[]> {
    return tx.scope.findMany({ where: { id: { in: [...ids] } } });
  }

  async listResourceTypes(filter: ProductFilter, page: KeysetPage): Promise<Page<ResourceType>> {
    const rows = await this.prisma.resourceType.findMany({
      where: { id: after(page), ...(filter.productId == null ? {} : { productId: filter.productId }) },
      orderBy: { id: 'asc' },
      take: page.limit + 1,
    });
    return pageOf(rows, page);
  }

  findResourceType(id: string): Promise<ResourceType | null> {
    return this.prisma.resourceType.findUnique({ where: { id } });
  }

  async listAuditActions(filter: ProductFilter, page: KeysetPage): Promise<Page<AuditAction>> {
    const rows = await this.prisma.auditAction.findMany({
      where: { id: after(page), ...(filter.productId == null ? {} : { productId: filter.productId }) },
      orderBy: { id: 'asc' },
      take: page.limit + 1,
    });
    return pageOf(rows, page);
  }

  findAuditAction(id: string): Promise<AuditAction | null> {
    return this.prisma.auditAction.findUnique({ where: { id } });
  }

  async listRoles(page: KeysetPage): Promise<Page<Role>> {
    const rows = await this.prisma.role.findMany({ where: { id: after(page) }, orderBy: { id: 'asc' }, take: page.limit + 1 });
    return pageOf(rows, page);
  }

  findRole(id: string, tx: RegistryTransaction | IamPrisma = this.prisma): Promise<Role | null> {
    return tx.role.findUnique({ where: { id } });
  }

  /** A role's own scope rows; `allScopes` roles have none and mean every registered scope. */
  async scopesOfRole(roleId: string, page: KeysetPage): Promise<Page<Scope>> {
    const rows = await this.prisma.scope.findMany({
      where: { id: after(page), roles: { some: { roleId } } },
      orderBy: { id: 'asc' },
      take: page.limit + 1,
    });
    return pageOf(rows, page);
  }

  async scopeIdsOfRole(tx: RegistryTransaction, roleId: string): Promise<string[]> {
    const rows = await tx.roleScope.findMany({ where: { roleId }, select: { scopeId: true }, orderBy: { scopeId: 'asc' } });
    return rows.map((row) => row.scopeId);
  }

  /** Inserts unless the id is taken (even concurrently): null then, and nothing changes. */
  async insertProduct(tx: RegistryTransaction, data: { id: string; displayName: string; owner: string }): Promise<Product | null> {
    const [created] = await tx.product.createManyAndReturn({ data: [data], skipDuplicates: true });
    return created ?? null;
  }

  async insertScope(
    tx: RegistryTransaction,
    data: { id: string; productId: string; description: string; riskClass: string; memberVisible: boolean; registryVersion: number },
  ): Promise<Scope | null> {
    const [created] = await tx.scope.createManyAndReturn({ data: [data], skipDuplicates: true });
    return created ?? null;
  }

  updateScopeLifecycle(tx: RegistryTransaction, id: string, lifecycle: RegistryLifecycle, registryVersion: number): Promise<Scope> {
    return tx.scope.update({ where: { id }, data: { lifecycle, registryVersion, updatedAt: new Date() } });
  }

  async insertResourceType(tx: RegistryTransaction, data: { id: string; productId: string; description: string }): Promise<ResourceType | null> {
    const [created] = await tx.resourceType.createManyAndReturn({ data: [data], skipDuplicates: true });
    return created ?? null;
  }

  async insertAuditAction(
    tx: RegistryTransaction,
    data: { id: string; productId: string; version: number; retentionClass: string; privileged: boolean; description: string },
  ): Promise<AuditAction | null> {
    const [created] = await tx.auditAction.createManyAndReturn({ data: [data], skipDuplicates: true });
    return created ?? null;
  }

  /** Replaces the role's scope set; the role row is locked first so concurrent replacements apply one after the other. */
  async replaceRoleScopes(tx: RegistryTransaction, roleId: string, scopeIds: readonly string[]): Promise<Role> {
    const role = await tx.role.update({ where: { id: roleId }, data: { updatedAt: new Date() } });
    await tx.roleScope.deleteMany({ where: { roleId } });
    await tx.roleScope.createMany({ data: scopeIds.map((scopeId) => ({ roleId, scopeId })) });
    return role;
  }

  /** Versions, scopes and roles as of one snapshot of the database, so the catalogue is never half of a change. */
  catalogRows(): Promise<CatalogRows> {
    return this.prisma.$transaction(
      async (tx) => ({
        versions: await tx.registryVersion.findMany(),
        scopes: await tx.scope.findMany({ orderBy: { id: 'asc' } }),
        roles: await tx.role.findMany({ include: { scopes: { select: { scopeId: true }, orderBy: { scopeId: 'asc' } } }, orderBy: { id: 'asc' } }),
      }),
      { isolationLevel: 'RepeatableRead' },
    );
  }
}
