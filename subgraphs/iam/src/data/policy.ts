import type { IamPrisma } from './database.js';
import { pageOf, type KeysetPage, type Page } from './registries-pages.js';
import type { Plan, PolicyKey, PolicyLevel, PolicyValue, Prisma } from '../generated/prisma/client.js';

export type { Plan, PolicyKey, PolicyLevel, PolicyValue };

export type PolicyTransaction = Prisma.TransactionClient;
type Reader = PolicyTransaction | IamPrisma;

/** policy_values' target at global level (its CHECK constraint): global values belong to no node. */
export const GLOBAL_TARGET_ID = '00000000-0000-0000-0000-000000000000';

/** Where a value sits in the hierarchy, as the organization, department and project ids of its node. */
export interface PolicyNode {
  organizationId: string;
  departmentId: string | null;
  projectId: string | null;
}

/** Everything one or more policy snapshots are built from, read through one connection. */
export interface PolicyRows {
  version: number;
  keys: PolicyKey[];
  organizations: Array<{ id: string; planId: string | null }>;
  values: PolicyValue[];
  /** The department of every project that has a value among `values`. */
  projectDepartments: Map<string, string>;
}

export interface PolicyRowsFilter {
  /** Only this organization's values (and the global values and its plan's); null: only the global values, no organization. */
  organizationId?: string | null;
  /** Only this key's values: a bounds check looks at nothing else. */
  key?: string;
}

const after = (page: KeysetPage) => (page.afterKey === null ? {} : { gt: page.afterKey });

/** Storage of policy keys, plans, plan assignments and values at every level. */
export class PolicyStore {
  constructor(private readonly prisma: IamPrisma) {}

  transaction<T>(work: (tx: PolicyTransaction) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(work);
  }

  async listKeys(page: KeysetPage): Promise<Page<PolicyKey>> {
    const rows = await this.prisma.policyKey.findMany({ where: { key: after(page) }, orderBy: { key: 'asc' }, take: page.limit + 1 });
    return pageOf(rows, page);
  }

  findKey(key: string, db: Reader = this.prisma): Promise<PolicyKey | null> {
    return db.policyKey.findUnique({ where: { key } });
  }

  async insertKey(tx: PolicyTransaction, data: Prisma.PolicyKeyCreateManyInput): Promise<PolicyKey | null> {
    const [created] = await tx.policyKey.createManyAndReturn({ data: [data], skipDuplicates: true });
    return created ?? null;
  }

  async listPlans(page: KeysetPage): Promise<Page<Plan>> {
    const rows = await this.prisma.plan.findMany({ where: { slug: after(page) }, orderBy: { slug: 'asc' }, take: page.limit + 1 });
    return pageOf(rows, page);
  }

  findPlan(id: string, db: Reader = this.prisma): Promise<Plan | null> {
    return db.plan.findUnique({ where: { id } });
  }

  async insertPlan(tx: PolicyTransaction, data: { slug: string; name: string }): Promise<Plan | null> {
    const [created] = await tx.plan.createManyAndReturn({ data: [data], skipDuplicates: true });
    return created ?? null;
  }

  findOrganizationPlan(organizationId: string, db: Reader = this.prisma): Promise<{ id: string; planId: string | null } | null> {
    return db.organization.findUnique({ where: { id: organizationId }, select: { id: true, planId: true } });
  }

  async assignPlan(tx: PolicyTransaction, organizationId: string, planId: string | null): Promise<void> {
    await tx.organization.update({ where: { id: organizationId }, data: { planId } });
  }

  async organizationNode(id: string): Promise<PolicyNode | null> {
    const row = await this.prisma.organization.findUnique({ where: { id }, select: { id: true } });
    return row && { organizationId: row.id, departmentId: null, projectId: null };
  }

  async departmentNode(id: string): Promise<PolicyNode | null> {
    const row = await this.prisma.department.findUnique({ where: { id }, select: { id: true, organizationId: true } });
    return row && { organizationId: row.organizationId, departmentId: row.id, projectId: null };
  }

  async projectNode(id: string): Promise<PolicyNode | null> {
    const row = await this.prisma.project.findUnique({ where: { id }, select: { id: true, organizationId: true, departmentId: true } });
    return row && { organizationId: row.organizationId, departmentId: row.departmentId, projectId: row.id };
  }

  findValue(level: PolicyLevel, targetId: string, key: string, db: Reader = this.prisma): Promise<PolicyValue | null> {
    return db.policyValue.findUnique({ where: { level_targetId_key: { level, targetId, key } } });
  }

  async listValues(level: PolicyLevel, targetId: string, page: KeysetPage): Promise<Page<PolicyValue>> {
    const rows = await this.prisma.policyValue.findMany({
      where: { level, targetId, key: after(page) },
      orderBy: { key: 'asc' },
      take: page.limit + 1,
    });
    return pageOf(rows, page);
  }

  upsertValue(
    tx: PolicyTransaction,
    input: { level: PolicyLevel; targetId: string; organizationId: string | null; key: string; value: string | boolean; setBy: string },
  ): Promise<PolicyValue> {
    const { level, targetId, key, value, setBy, organizationId } = input;
    return tx.policyValue.upsert({
      where: { level_targetId_key: { level, targetId, key } },
      create: { level, targetId, key, value, setBy, organizationId },
      update: { value, setBy, updatedAt: new Date() },
    });
  }

  /** The removed row, or null when none was set. */
  async deleteValue(tx: PolicyTransaction, level: PolicyLevel, targetId: string, key: string): Promise<PolicyValue | null> {
    const row = await this.findValue(level, targetId, key, tx);
    if (row === null) return null;
    await tx.policyValue.delete({ where: { id: row.id } });
    return row;
  }

  async policyVersion(db: Reader = this.prisma): Promise<number> {
    const row = await db.registryVersion.findUnique({ where: { name: 'policy' } });
    return row?.version ?? 0;
  }

  /**
   * The rows of the snapshots the filter asks for. Outside a transaction the
   * reads share one repeatable-read snapshot, so the version matches the
   * values; inside a policy write they run after its version bump, whose row
   * lock makes every earlier write visible.
   */
  rows(filter: PolicyRowsFilter, tx?: PolicyTransaction): Promise<PolicyRows> {
    if (tx !== undefined) return this.readRows(tx, filter);
    return this.prisma.$transaction((snapshot) => this.readRows(snapshot, filter), { isolationLevel: 'RepeatableRead' });
  }

  private async readRows(db: PolicyTransaction, filter: PolicyRowsFilter): Promise<PolicyRows> {
    const version = await this.policyVersion(db);
    const keys = await db.policyKey.findMany({ orderBy: { key: 'asc' } });
    const { organizationId } = filter;
    const organizations =
      organizationId === null
        ? []
        : await db.organization.findMany({
            where: organizationId === undefined ? {} : { id: organizationId },
            select: { id: true, planId: true },
            orderBy: { id: 'asc' },
          });
    const byKey = filter.key === undefined ? {} : { key: filter.key };
    const planId = organizations[0]?.planId ?? null;
    const within =
      organizationId === undefined
        ? {}
        : organizationId === null
          ? { level: 'global' as const }
          : { OR: [{ level: 'global' as const }, ...(planId === null ? [] : [{ level: 'plan' as const, targetId: planId }]), { organizationId }] };
    const values = await db.policyValue.findMany({ where: { ...byKey, ...within }, orderBy: [{ key: 'asc' }] });
    const projectIds = values.filter((value) => value.level === 'project').map((value) => value.targetId);
    const projects =
      projectIds.length === 0 ? [] : await db.project.findMany({ where: { id: { in: projectIds } }, select: { id: true, departmentId: true } });
    return { version, keys, organizations, values, projectDepartments: new Map(projects.map((project) => [project.id, project.departmentId])) };
  }
}
