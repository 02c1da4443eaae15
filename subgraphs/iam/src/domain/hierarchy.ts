import { z } from 'zod';
import { AppError, parseInput } from '@aifactory/errors';
import { hasPlatformRole, type Principal } from '@aifactory/service-auth';
import { actorOf, type Outbox } from '@aifactory/subgraph-kit';
import type { Department, HierarchyStore, Organization, Project } from '../data/hierarchy.js';
import { organizationCreated, organizationUpdated, type EventOrigin } from './organization-events.js';

const slugSchema = z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'must be 1-63 lowercase letters, digits or dashes');
const nameSchema = z.string().trim().min(1).max(200);
const idSchema = z.uuid();

const organizationInput = z.object({
  slug: slugSchema,
  name: nameSchema,
  billingCurrency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as USD'),
});
const departmentInput = z.object({ organizationId: idSchema, slug: slugSchema, name: nameSchema });
const projectInput = z.object({ departmentId: idSchema, slug: slugSchema, name: nameSchema });

/** The request a change comes from: who asks, and the correlation id its events carry. */
export interface Caller {
  principal: Principal;
  correlationId: string;
}

/**
 * Reads and maintains the organization -> department -> project hierarchy.
 * Until IAM memberships exist (the IAM issue), only platform admins see any
 * of it: every read fails closed for everyone else.
 */
export class HierarchyService {
  constructor(
    private readonly store: HierarchyStore,
    private readonly outbox: Outbox,
  ) {}

  private canSeeEverything(principal: Principal): boolean {
    return hasPlatformRole(principal, 'platform_admin');
  }

  async listOrganizations(principal: Principal): Promise<Organization[]> {
    return this.canSeeEverything(principal) ? this.store.listOrganizations() : [];
  }

  async organization(principal: Principal, id: string): Promise<Organization | null> {
    if (!this.canSeeEverything(principal) || !idSchema.safeParse(id).success) return null;
    return this.store.findOrganization(id);
  }

  async department(principal: Principal, id: string): Promise<Department | null> {
    if (!this.canSeeEverything(principal) || !idSchema.safeParse(id).success) return null;
    return this.store.findDepartment(id);
  }

  async project(principal: Principal, id: string): Promise<Project | null> {
    if (!this.canSeeEverything(principal) || !idSchema.safeParse(id).success) return null;
    return this.store.findProject(id);
  }

  async departmentsOf(principal: Principal, organizationId: string): Promise<Department[]> {
    return this.canSeeEverything(principal) ? this.store.departmentsOf(organizationId) : [];
  }

  async projectsOf(principal: Principal, departmentId: string): Promise<Project[]> {
    return this.canSeeEverything(principal) ? this.store.projectsOf(departmentId) : [];
  }

  /** A rename announces `platform.iam.organization.updated` in its transaction; one to the current name changes nothing. */
  async renameOrganization(caller: Caller, input: { id: string; name: string }): Promise<Organization> {
    if (!this.canSeeEverything(caller.principal)) throw new AppError('AUTH_FORBIDDEN', 'Only platform admins may rename organizations');
    const valid = parseInput(z.object({ id: idSchema, name: nameSchema }), input);
    const origin: EventOrigin = { actor: actorOf(caller.principal), correlationId: caller.correlationId };
    return this.store.transaction(async (tx) => {
      const renamed = await this.store.renameOrganization(tx, valid.id, valid.name);
      if (!renamed) throw new AppError('NOT_FOUND', 'Organization not found');
      if (renamed.changed) await this.outbox.add(tx, organizationUpdated(renamed.organization, origin));
      return renamed.organization;
    });
  }

  /**
   * Idempotent by slug: the dev seed and later imports may run it any number
   * of times. Only a run that creates the organization announces it.
   */
  async ensureOrganization(origin: EventOrigin, input: { slug: string; name: string; billingCurrency: string }): Promise<Organization> {
    const valid = parseInput(organizationInput, input);
    return this.store.transaction(async (tx) => {
      const { organization, created } = await this.store.createOrganizationUnlessExists(tx, valid);
      if (created) await this.outbox.add(tx, organizationCreated(organization, origin));
      return organization;
    });
  }

  async ensureDepartment(input: { organizationId: string; slug: string; name: string }): Promise<Department> {
    return this.store.ensureDepartment(parseInput(departmentInput, input));
  }

  async ensureProject(input: { departmentId: string; slug: string; name: string }): Promise<Project> {
    const valid = parseInput(projectInput, input);
    const department = await this.store.findDepartment(valid.departmentId);
    if (!department) throw new AppError('NOT_FOUND', 'Department not found');
    if (department.status !== 'active') throw new AppError('RESOURCE_CONFLICT', 'The department is archived and accepts no new projects');
    return this.store.ensureProject({ ...valid, organizationId: department.organizationId });
  }
}
