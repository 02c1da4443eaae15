import { randomUUID } from 'node:crypto';
import type { HierarchyService } from '../domain/hierarchy.js';
import type { EventOrigin } from '../domain/hierarchy-events.js';
import type { MembershipService } from '../domain/memberships.js';
import type { ServiceIdentityService } from '../domain/service-identities.js';
import type { UserService } from '../domain/users.js';

/** The demo tenant the dev stack starts with (README quick start). */
export const DEMO_HIERARCHY = {
  organization: { slug: 'demo', name: 'Demo Organization', billingCurrency: 'USD' },
  department: { slug: 'research', name: 'Research' },
  project: { slug: 'llm-training', name: 'LLM training' },
} as const;

/** The demo organization's admin, as the dev identity provider names them (`npm run dev:token -- --email <email>`). */
export interface DemoAdmin {
  issuer: string;
  email: string;
}

export interface SeededHierarchy {
  organizationId: string;
  departmentId: string;
  projectId: string;
  billingCurrency: string;
  adminUserId: string;
}

export interface DemoServices {
  hierarchy: HierarchyService;
  users: UserService;
  memberships: MembershipService;
}

/**
 * Idempotent: each step finds the row by its slug (the admin by issuer and
 * subject, their role by node) before creating it, through the same domain
 * code as the API, so every row it creates is announced and audited.
 */
export async function seedDemoHierarchy(services: DemoServices, admin: DemoAdmin): Promise<SeededHierarchy> {
  // No request behind a seed: the system is the actor, and each run has a correlation id of its own.
  const origin: EventOrigin = { actor: { type: 'system', id: 'iam-seed' }, correlationId: `seed-${randomUUID()}` };
  const organization = await services.hierarchy.ensureOrganization(origin, DEMO_HIERARCHY.organization);
  const department = await services.hierarchy.ensureDepartment(origin, { organizationId: organization.id, ...DEMO_HIERARCHY.department });
  const project = await services.hierarchy.ensureProject(origin, { departmentId: department.id, ...DEMO_HIERARCHY.project });
  // The dev identity provider's subject for an email (tools/devstack dev-token.ts).
  const user = await services.users.signIn(origin, {
    issuer: admin.issuer,
    subject: `dev|${admin.email}`,
    email: admin.email,
    emailVerified: true,
    // The name the dev identity provider sends (its assertions name people by email), so signing in changes nothing.
    name: admin.email,
  });
  await services.memberships.ensureMembership(origin, {
    userId: user.userId,
    role: 'org_admin',
    placement: { organizationId: organization.id, level: 'organization', nodeId: organization.id, departmentId: null, projectId: null },
  });
  return {
    organizationId: organization.id,
    departmentId: department.id,
    projectId: project.id,
    billingCurrency: organization.billingCurrency,
    adminUserId: user.userId,
  };
}

/** A platform service's public key (Ed25519, SPKI PEM) as its credential file's owner hands it over; never the private key. */
export interface ServicePublicKey {
  name: string;
  publicKeyPem: string;
}

/**
 * Registers each service's public key with its identity (from
 * packages/contracts/registry/service-identities.json), so its service
 * tokens verify. Idempotent: a key the identity already holds changes
 * nothing. Returns each key's id (its RFC 7638 thumbprint, the tokens' `kid`).
 */
export async function registerServicePublicKeys(
  services: { serviceIdentities: ServiceIdentityService },
  keys: readonly ServicePublicKey[],
): Promise<Array<{ name: string; kid: string }>> {
  const origin: EventOrigin = { actor: { type: 'system', id: 'iam-seed' }, correlationId: `seed-${randomUUID()}` };
  const registered: Array<{ name: string; kid: string }> = [];
  for (const key of keys) {
    const { kid } = await services.serviceIdentities.registerKey(origin, key.name, key.publicKeyPem);
    registered.push({ name: key.name, kid });
  }
  return registered;
}
