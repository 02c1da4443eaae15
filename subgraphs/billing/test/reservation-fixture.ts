import type { PolicyKeyDef, PolicySnapshot, PolicyValues } from '@aifactory/authz';
import { BUDGET_KEY, MAX_TTL_KEY, type PolicySource } from '../src/domain/reservations.js';
import type { BillingFixture } from './billing-fixture.js';

const KEYS: Record<string, PolicyKeyDef> = {
  [BUDGET_KEY]: {
    key: BUDGET_KEY,
    type: 'decimal',
    unit: null,
    default: '100000000',
    direction: 'ceiling',
    application: 'pooled',
    enumValues: null,
    description: 'Monthly spend per pool, in minor units.',
    lifecycle: 'active',
  },
  [MAX_TTL_KEY]: {
    key: MAX_TTL_KEY,
    type: 'duration',
    unit: null,
    default: 'PT24H',
    direction: 'ceiling',
    application: 'per_project',
    enumValues: null,
    description: 'Longest a reservation may stay open.',
    lifecycle: 'active',
  },
};

/** Values set on the organization, its departments and projects, as IAM would publish them. */
export interface PolicyLayers {
  organization?: PolicyValues;
  departments?: Record<string, PolicyValues>;
  projects?: Record<string, { departmentId: string; values: PolicyValues }>;
}

/** An organization's policy snapshot with billing's two keys, as IAM's read model carries it. */
export function policySnapshot(organizationId: string, layers: PolicyLayers = {}): PolicySnapshot {
  return {
    version: 1,
    organizationId,
    planId: null,
    keys: KEYS,
    layers: {
      global: {},
      plan: {},
      organization: layers.organization ?? {},
      departments: layers.departments ?? {},
      projects: layers.projects ?? {},
    },
    publishedAt: new Date().toISOString(),
  };
}

/** A fresh read model holding the given snapshots (ageMs 0), or one as old as `ageMs`. */
export function policySource(snapshots: readonly PolicySnapshot[], ageMs: number | null = 0): PolicySource {
  const byOrganization = new Map(snapshots.map((snapshot) => [snapshot.organizationId, snapshot]));
  return { ageMs: () => ageMs, policy: (organizationId) => byOrganization.get(organizationId) };
}

/** Puts a project into billing's read model of iam's hierarchy, as the hierarchy consumer would. */
export async function knownProject(
  fixture: BillingFixture,
  project: { organizationId: string; departmentId: string; projectId: string },
  status: 'active' | 'archived' = 'active',
): Promise<void> {
  await fixture.admin.query(
    `INSERT INTO projects (id, organization_id, department_id, name, status, version) VALUES ($1, $2, $3, 'test project', $4, 1)
     ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, version = projects.version + 1`,
    [project.projectId, project.organizationId, project.departmentId, status],
  );
}
