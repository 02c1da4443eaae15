import { randomUUID } from 'node:crypto';
import type { HierarchyService } from '../domain/hierarchy.js';
import type { EventOrigin } from '../domain/organization-events.js';

/** The demo tenant the dev stack starts with (README quick start). */
export const DEMO_HIERARCHY = {
  organization: { slug: 'demo', name: 'Demo Organization', billingCurrency: 'USD' },
  department: { slug: 'research', name: 'Research' },
  project: { slug: 'llm-training', name: 'LLM training' },
} as const;

export interface SeededHierarchy {
  organizationId: string;
  departmentId: string;
  projectId: string;
  billingCurrency: string;
}

/** Idempotent: each step finds the row by its slug before creating it. */
export async function seedDemoHierarchy(hierarchy: HierarchyService): Promise<SeededHierarchy> {
  // No request behind a seed: the system is the actor, and each run has a correlation id of its own.
  const origin: EventOrigin = { actor: { type: 'system', id: 'iam-seed' }, correlationId: `seed-${randomUUID()}` };
  const organization = await hierarchy.ensureOrganization(origin, DEMO_HIERARCHY.organization);
  const department = await hierarchy.ensureDepartment({ organizationId: organization.id, ...DEMO_HIERARCHY.department });
  const project = await hierarchy.ensureProject({ departmentId: department.id, ...DEMO_HIERARCHY.project });
  return {
    organizationId: organization.id,
    departmentId: department.id,
    projectId: project.id,
    billingCurrency: organization.billingCurrency,
  };
}
