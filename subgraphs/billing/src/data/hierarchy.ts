import type { DepartmentState, OrganizationState, ProjectState } from '@aifactory/contracts';
import type { Queryable } from '@aifactory/events';

/** A project as billing knows it from iam's events. */
export interface KnownProject {
  id: string;
  organizationId: string;
  departmentId: string;
  name: string;
  status: 'active' | 'archived';
}

/**
 * Billing's read model of iam's hierarchy (organizations, departments,
 * projects), written only from iam's events. Every write keeps the newest
 * version: the consumer's version rule already drops older events, and the
 * `WHERE version <` guard keeps a replayed old event harmless even so.
 */
export class HierarchyStore {
  async applyOrganization(tx: Queryable, state: OrganizationState, version: number): Promise<void> {
    await tx.query(
      `INSERT INTO organizations AS o (id, slug, name, billing_currency, status, version)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (id) DO UPDATE
       SET slug = EXCLUDED.slug, name = EXCLUDED.name, billing_currency = EXCLUDED.billing_currency,
           status = EXCLUDED.status, version = EXCLUDED.version, updated_at = CURRENT_TIMESTAMP
       WHERE o.version < EXCLUDED.version`,
      [state.id, state.slug, state.name, state.billingCurrency, state.status, version],
    );
  }

  async applyDepartment(tx: Queryable, state: DepartmentState, version: number): Promise<void> {
    await tx.query(
      `INSERT INTO departments AS d (id, organization_id, name, status, version)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id) DO UPDATE
       SET name = EXCLUDED.name, status = EXCLUDED.status, version = EXCLUDED.version, updated_at = CURRENT_TIMESTAMP
       WHERE d.version < EXCLUDED.version`,
      [state.id, state.organizationId, state.name, state.status, version],
    );
  }

  async applyProject(tx: Queryable, state: ProjectState, version: number): Promise<void> {
    await tx.query(
      `INSERT INTO projects AS p (id, organization_id, department_id, name, status, version)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (id) DO UPDATE
       SET name = EXCLUDED.name, status = EXCLUDED.status, version = EXCLUDED.version, updated_at = CURRENT_TIMESTAMP
       WHERE p.version < EXCLUDED.version`,
      [state.id, state.organizationId, state.departmentId, state.name, state.status, version],
    );
  }

  async findProject(db: Queryable, projectId: string): Promise<KnownProject | null> {
    const { rows } = await db.query<{ id: string; organization_id: string; department_id: string; name: string; status: 'active' | 'archived' }>(
      'SELECT id, organization_id, department_id, name, status FROM projects WHERE id = $1',
      [projectId],
    );
    const row = rows[0];
    return row ? { id: row.id, organizationId: row.organization_id, departmentId: row.department_id, name: row.name, status: row.status } : null;
  }
}
