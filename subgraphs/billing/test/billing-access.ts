import { randomUUID } from 'node:crypto';
import { Access, buildCatalogSnapshot, Catalog, DenyAuditor, type DeniedAccess, type PolicySnapshot } from '@aifactory/authz';
import { loadRegistryData } from '@aifactory/contracts';
import { createLogger } from '@aifactory/logging';
import type { Principal } from '@aifactory/service-auth';

/**
 * Real authorization for billing's domain tests: the committed role
 * catalogue (platform_admin holds every scope, org_admin holds
 * platform:billing:read on its organization, ...) and a deny auditor whose
 * records the test can read.
 */
export interface BillingAccess {
  /** Every deny recorded so far. */
  denies: DeniedAccess[];
  /** A request's caller: principal, access and correlation id, as resolvers pass them to the domain. */
  caller(principal: Principal): { principal: Principal; access: Access; correlationId: string };
}

const registry = loadRegistryData();
const catalog = new Catalog(
  buildCatalogSnapshot({ scopes: registry.scopes, roles: registry.roles, registryVersions: { scopes: 1, roles: 1 }, publishedAt: new Date().toISOString() }),
);

export function billingAccess(): BillingAccess {
  const denies: DeniedAccess[] = [];
  const auditor = new DenyAuditor({
    publisher: 'billing',
    sink: { write: async (denied) => void denies.push(denied) },
    logger: createLogger({ service: 'billing-test', level: 'silent' }),
  });
  return {
    denies,
    caller: (principal) => {
      const correlationId = `test-${randomUUID()}`;
      return { principal, correlationId, access: new Access({ principal, catalog, correlationId, denies: auditor }) };
    },
  };
}

export const platformAdmin: Principal = { type: 'user', subject: 'platform-admin', platformRoles: ['platform_admin'], grants: [] };

export function orgAdmin(organizationId: string): Principal {
  return { type: 'user', subject: `org-admin-${organizationId}`, platformRoles: [], grants: [{ level: 'organization', id: organizationId, role: 'org_admin' }] };
}

export function projectMember(organizationId: string, departmentId: string, projectId: string): Principal {
  return {
    type: 'user',
    subject: `member-${projectId}`,
    platformRoles: [],
    grants: [{ level: 'project', id: projectId, role: 'project_member', org: organizationId, dept: departmentId }],
  };
}

/** IAM's read model as billing reads it: one fresh snapshot per organization, with the registry's keys and the values a test sets on the organization. */
export function policySource(organizationValues: Record<string, string> = {}): { ageMs(): number; policy(organizationId: string): PolicySnapshot } {
  return {
    ageMs: () => 1_000,
    policy: (organizationId) => ({
      version: 1,
      organizationId,
      planId: null,
      keys: Object.fromEntries(registry.policyKeys.map(({ since: _since, ...key }) => [key.key, key])),
      layers: { global: {}, plan: {}, organization: organizationValues, departments: {}, projects: {} },
      publishedAt: new Date().toISOString(),
    }),
  };
}
