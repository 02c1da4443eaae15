import { z } from 'zod';
import { can as decide } from '@aifactory/authz';
import { AppError, parseInput } from '@aifactory/errors';
import type { Outbox } from '@aifactory/subgraph-kit';
import type { AccessStore } from '../data/access.js';
import { isUniqueViolation, type Department, type HierarchyStore, type IamTransaction, type Organization, type Project } from '../data/hierarchy.js';
import type { ApiKeyWriter } from './api-key-writer.js';
import { auditEvent, type AuditCaller } from './audit.js';
import { originOf, platformWide, type Caller } from './caller.js';
import { FreshPolicy } from './fresh-policy.js';
import { departmentEvent, organizationCreated, organizationUpdated, projectEvent, type EventOrigin } from './hierarchy-events.js';
import { MembershipWriter } from './membership-writer.js';
import { connectionOf, emptyConnection, type Connection, type PageRequest } from './pagination.js';
import { organizationsOfGrants, reachOf } from './visibility.js';

const slugSchema = z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'must be 1-63 lowercase letters, digits or dashes');
const nameSchema = z.string().trim().min(1).max(200);
const idSchema = z.uuid();
/** ISO 4217 alphabetic code; the organizations table constrains it the same way. */
const currencySchema = z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as USD');

const organizationInput = z.object({ slug: slugSchema, name: nameSchema, billingCurrency: currencySchema });
const departmentInput = z.object({ organizationId: idSchema, slug: slugSchema, name: nameSchema });
const projectInput = z.object({ departmentId: idSchema, slug: slugSchema, name: nameSchema });
const renameInput = z.object({ id: idSchema, name: nameSchema });

export const SELF_SERVICE_KEY = 'platform.organization.self_service';
export const PROJECTS_PER_DEPARTMENT_KEY = 'platform.projects.max_per_department';

/** A node of the hierarchy as `can()` sees it. */
function resourceOf(node: Organization | Department | Project) {
  if ('departmentId' in node) return { organizationId: node.organizationId, departmentId: node.departmentId, projectId: node.id };
  if ('organizationId' in node) return { organizationId: node.organizationId, departmentId: node.id, projectId: null };
  return { organizationId: node.id, departmentId: null, projectId: null };
}

function isId(id: string): boolean {
  return idSchema.safeParse(id).success;
}

function duplicate(what: string, cause: unknown): AppError {
  return new AppError('IAM_DUPLICATE', `${what} with this slug already exists`, { cause });
}

/**
 * The organization -> department -> project hierarchy: reads filtered by
 * `can()`, and every change with its domain event and its audit event in one
 * transaction.
 */
export class HierarchyService {
  constructor(
    private readonly store: HierarchyStore,
    private readonly access: AccessStore,
    private readonly outbox: Outbox,
    private readonly memberships: MembershipWriter,
    private readonly policy: FreshPolicy,
    private readonly apiKeys: ApiKeyWriter,
    private readonly defaultBillingCurrency: string,
  ) {}

  // ---------------------------------------------------------------- reads

  /** Platform roles that carry the scope see every organization; anyone else those they hold a grant in. */
  async organizations(caller: Caller, page: PageRequest): Promise<Connection<Organization>> {
    const scope = 'platform:organization:read';
    const only = platformWide(caller, scope) ? null : organizationsOfGrants(caller, scope);
    if (only !== null && only.length === 0) return emptyConnection();
    return connectionOf(await this.store.listOrganizations(page, only), page);
  }

  /** The organizations the caller holds any grant in, platform admins included. */
  async myOrganizations(caller: Caller, page: PageRequest): Promise<Connection<Organization>> {
    const ids = organizationsOfGrants(caller, 'platform:organization:read');
    return ids.length === 0 ? emptyConnection() : connectionOf(await this.store.listOrganizations(page, ids), page);
  }

  async myDepartments(caller: Caller, page: PageRequest): Promise<Connection<Department>> {
    return connectionOf(await this.store.departmentsReached(reachOf(caller, 'platform:department:read'), page), page);
  }

  async myProjects(caller: Caller, page: PageRequest): Promise<Connection<Project>> {
    return connectionOf(await this.store.projectsReached(reachOf(caller, 'platform:project:read'), page), page);
  }

  /** Null when it does not exist or the caller may not see it (the refusal is audited). */
  async organization(caller: Caller, id: string): Promise<Organization | null> {
    const organization = isId(id) ? await this.store.findOrganization(id) : null;
    return organization && caller.access.can('platform:organization:read', resourceOf(organization)) ? organization : null;
  }

  async department(caller: Caller, id: string): Promise<Department | null> {
    const department = isId(id) ? await this.store.findDepartment(id) : null;
    return department && caller.access.can('platform:department:read', resourceOf(department)) ? department : null;
  }

  async project(caller: Caller, id: string): Promise<Project | null> {
    const project = isId(id) ? await this.store.findProject(id) : null;
    return project && caller.access.can('platform:project:read', resourceOf(project)) ? project : null;
  }

  /**
   * Nested lists show what the caller's grants reach without auditing the
   * rest: a department admin sees their department in its organization's list.
   */
  async departmentsOf(caller: Caller, organization: Organization, page: PageRequest): Promise<Connection<Department>> {
    const scope = 'platform:department:read';
    if (this.seesWhole(caller, scope, resourceOf(organization))) {
      return connectionOf(await this.store.departmentsOf(organization.id, page), page);
    }
    const reach = reachOf(caller, scope);
    const rows = await this.store.departmentsReached({ organizationIds: [], departmentIds: reach.departmentIds }, page, { organizationId: organization.id });
    return connectionOf(rows, page);
  }

  async projectsOf(caller: Caller, department: Department, page: PageRequest): Promise<Connection<Project>> {
    const scope = 'platform:project:read';
    if (this.seesWhole(caller, scope, resourceOf(department))) {
      return connectionOf(await this.store.projectsOf(department.id, page), page);
    }
    const reach = reachOf(caller, scope);
    const rows = await this.store.projectsReached({ organizationIds: [], departmentIds: [], projectIds: reach.projectIds }, page, { departmentId: department.id });
    return connectionOf(rows, page);
  }

  /** Parent of a visible child: shown without a second check, so a project member can name their project's department. */
  parentOrganization(id: string): Promise<Organization | null> {
    return this.store.findOrganization(id);
  }

  parentDepartment(id: string): Promise<Department | null> {
    return this.store.findDepartment(id);
  }

  parentProject(id: string): Promise<Project | null> {
    return this.store.findProject(id);
  }

  private seesWhole(caller: Caller, scope: string, resource: ReturnType<typeof resourceOf>): boolean {
    return decide(caller.access.catalog, caller.principal, scope, resource).allowed;
  }

  // -------------------------------------------------------------- changes

  /**
   * Platform admins create organizations; anyone else only where the global
   * policy allows self-service. Either way the creator becomes its first
   * `org_admin`, in the same transaction.
   */
  async createOrganization(caller: Caller, input: { slug: string; name: string; billingCurrency?: string | null }): Promise<Organization> {
    const valid = parseInput(organizationInput, { ...input, billingCurrency: input.billingCurrency ?? this.defaultBillingCurrency });
    const scope = 'platform:organization:create';
    if (!caller.access.holds(scope)) {
      const selfService = caller.principal.type === 'user' && this.policy.value(caller, 'createOrganization', null, {}, SELF_SERVICE_KEY) === true;
      if (!selfService) {
        caller.access.recordDeny(scope, null, null, 'self_service_disabled');
        throw new AppError('IAM_SELF_SERVICE_DISABLED', 'Creating organizations is reserved to platform admins here');
      }
    }
    const creator = caller.principal.type === 'user' ? await this.access.userOfPrincipal(caller.principal) : null;
    if (caller.principal.type === 'user' && creator === null) {
      throw new AppError('NOT_FOUND', 'Your user is not known to IAM yet; sign in again');
    }
    const origin = originOf(caller);
    return this.store.transaction(async (tx) => {
      const organization = await this.store.createOrganization(tx, valid).catch((error: unknown) => {
        throw isUniqueViolation(error) ? duplicate('An organization', error) : error;
      });
      await this.outbox.add(tx, organizationCreated(organization, origin));
      await this.outbox.add(tx, this.audit('iam.organization.create', origin, scope, organization, { slug: organization.slug, billingCurrency: organization.billingCurrency }));
      if (creator !== null) {
        await this.memberships.grantInTransaction(tx, origin, scope, {
          userId: creator.id,
          role: 'org_admin',
          placement: { organizationId: organization.id, level: 'organization', nodeId: organization.id, departmentId: null, projectId: null },
        });
      }
      return organization;
    });
  }

  /** A rename announces `platform.iam.organization.updated` in its transaction; one to the current name changes nothing. */
  async renameOrganization(caller: Caller, input: { id: string; name: string }): Promise<Organization> {
    const valid = parseInput(renameInput, input);
    const scope = 'platform:organization:update';
    const current = await this.store.findOrganization(valid.id);
    if (!current) throw new AppError('NOT_FOUND', 'Organization not found');
    caller.access.require(scope, resourceOf(current));
    const origin = originOf(caller);
    return this.store.transaction(async (tx) => {
      const renamed = await this.store.renameOrganization(tx, valid.id, valid.name);
      if (!renamed) throw new AppError('NOT_FOUND', 'Organization not found');
      if (renamed.changed) {
        await this.outbox.add(tx, organizationUpdated(renamed.organization, origin));
        await this.outbox.add(tx, this.audit('iam.organization.update', origin, scope, renamed.organization, { name: valid.name, previousName: current.name }));
      }
      return renamed.organization;
    });
  }

  async createDepartment(caller: Caller, input: { organizationId: string; slug: string; name: string }): Promise<Department> {
    const valid = parseInput(departmentInput, input);
    const scope = 'platform:department:create';
    const organization = await this.store.findOrganization(valid.organizationId);
    if (!organization) throw new AppError('NOT_FOUND', 'Organization not found');
    caller.access.require(scope, resourceOf(organization));
    if (organization.status !== 'active') throw new AppError('IAM_ARCHIVED', 'The organization is archived');
    const origin = originOf(caller);
    return this.store.transaction(async (tx) => {
      const department = await this.store.createDepartment(tx, valid).catch((error: unknown) => {
        throw isUniqueViolation(error) ? duplicate('A department', error) : error;
      });
      await this.announceDepartment(tx, 'created', department, origin, scope, { slug: department.slug, name: department.name });
      return department;
    });
  }

  renameDepartment(caller: Caller, input: { id: string; name: string }): Promise<Department> {
    const valid = parseInput(renameInput, input);
    return this.changeDepartment(caller, valid.id, { name: valid.name });
  }

  /** Archiving stops new projects and resources in it; existing ones stay. Archiving twice changes nothing. */
  archiveDepartment(caller: Caller, id: string): Promise<Department> {
    return this.changeDepartment(caller, parseInput(idSchema, id), { status: 'archived' });
  }

  private async changeDepartment(caller: Caller, id: string, change: { name: string } | { status: 'archived' }): Promise<Department> {
    const scope = 'platform:department:update';
    const current = await this.store.findDepartment(id);
    if (!current) throw new AppError('NOT_FOUND', 'Department not found');
    caller.access.require(scope, resourceOf(current));
    const origin = originOf(caller);
    return this.store.transaction(async (tx) => {
      const locked = await this.store.lockDepartment(tx, id);
      if (!locked) throw new AppError('NOT_FOUND', 'Department not found');
      if ('name' in change && locked.status === 'archived') throw new AppError('IAM_ARCHIVED', 'The department is archived');
      const changed = await this.store.updateDepartment(tx, id, change);
      if (!changed) return locked;
      const archived = 'status' in change;
      await this.announceDepartment(tx, archived ? 'archived' : 'updated', changed, origin, scope, archived ? {} : { name: changed.name, previousName: locked.name });
      return changed;
    });
  }

  /**
   * Refused in an archived department, and past the department's project
   * quota (policy `platform.projects.max_per_department`, read from a fresh
   * snapshot). The department's row is locked while its projects are
   * counted, so two concurrent creations cannot both take the last place.
   */
  async createProject(caller: Caller, input: { departmentId: string; slug: string; name: string }): Promise<Project> {
    const valid = parseInput(projectInput, input);
    const scope = 'platform:project:create';
    const department = await this.store.findDepartment(valid.departmentId);
    if (!department) throw new AppError('NOT_FOUND', 'Department not found');
    caller.access.require(scope, resourceOf(department));
    const limit = Number(
      this.policy.value(caller, 'createProject', department.organizationId, { departmentId: department.id }, PROJECTS_PER_DEPARTMENT_KEY),
    );
    const origin = originOf(caller);
    return this.store.transaction(async (tx) => {
      const locked = await this.store.lockDepartment(tx, department.id);
      if (!locked) throw new AppError('NOT_FOUND', 'Department not found');
      if (locked.status !== 'active') throw new AppError('IAM_ARCHIVED', 'The department is archived and accepts no new projects');
      const count = await this.store.countActiveProjects(tx, locked.id);
      if (count >= limit) {
        throw new AppError('POLICY_BOUND_VIOLATION', `The department already has ${count} projects, its limit`, {
          details: { key: PROJECTS_PER_DEPARTMENT_KEY, limit },
        });
      }
      const project = await this.store
        .createProject(tx, { ...valid, organizationId: locked.organizationId })
        .catch((error: unknown) => {
          throw isUniqueViolation(error) ? duplicate('A project', error) : error;
        });
      await this.announceProject(tx, 'created', project, origin, scope, { slug: project.slug, name: project.name });
      return project;
    });
  }

  renameProject(caller: Caller, input: { id: string; name: string }): Promise<Project> {
    const valid = parseInput(renameInput, input);
    return this.changeProject(caller, valid.id, { name: valid.name });
  }

  archiveProject(caller: Caller, id: string): Promise<Project> {
    return this.changeProject(caller, parseInput(idSchema, id), { status: 'archived' });
  }

  private async changeProject(caller: Caller, id: string, change: { name: string } | { status: 'archived' }): Promise<Project> {
    const scope = 'platform:project:update';
    const current = await this.store.findProject(id);
    if (!current) throw new AppError('NOT_FOUND', 'Project not found');
    caller.access.require(scope, resourceOf(current));
    const origin = originOf(caller);
    return this.store.transaction(async (tx) => {
      const locked = await this.store.lockProject(tx, id);
      if (!locked) throw new AppError('NOT_FOUND', 'Project not found');
      if ('name' in change && locked.status === 'archived') throw new AppError('IAM_ARCHIVED', 'The project is archived');
      const changed = await this.store.updateProject(tx, id, change);
      if (!changed) return locked;
      const archived = 'status' in change;
      await this.announceProject(tx, archived ? 'archived' : 'updated', changed, origin, scope, archived ? {} : { name: changed.name, previousName: locked.name });
      // Issue 15: archiving the project stops its keys, in the archive's own transaction.
      if (archived) await this.apiKeys.projectArchived(tx, changed.id, origin);
      return changed;
    });
  }

  // ----------------------------------------------------------------- seeds

  /**
   * Idempotent by slug: the dev seed and later imports may run it any number
   * of times. Only a run that creates the organization announces it.
   */
  async ensureOrganization(origin: EventOrigin, input: { slug: string; name: string; billingCurrency: string }): Promise<Organization> {
    const valid = parseInput(organizationInput, input);
    return this.store.transaction(async (tx) => {
      const { organization, created } = await this.store.createOrganizationUnlessExists(tx, valid);
      if (created) {
        await this.outbox.add(tx, organizationCreated(organization, origin));
        await this.outbox.add(tx, this.audit('iam.organization.create', origin, null, organization, { slug: organization.slug, billingCurrency: organization.billingCurrency }));
      }
      return organization;
    });
  }

  async ensureDepartment(origin: EventOrigin, input: { organizationId: string; slug: string; name: string }): Promise<Department> {
    const valid = parseInput(departmentInput, input);
    return this.store.transaction(async (tx) => {
      const existing = await this.store.findDepartmentBySlug(tx, valid.organizationId, valid.slug);
      if (existing) return existing;
      const department = await this.store.createDepartment(tx, valid);
      await this.announceDepartment(tx, 'created', department, origin, null, { slug: department.slug, name: department.name });
      return department;
    });
  }

  async ensureProject(origin: EventOrigin, input: { departmentId: string; slug: string; name: string }): Promise<Project> {
    const valid = parseInput(projectInput, input);
    return this.store.transaction(async (tx) => {
      const department = await this.store.lockDepartment(tx, valid.departmentId);
      if (!department) throw new AppError('NOT_FOUND', 'Department not found');
      const existing = await this.store.findProjectBySlug(tx, department.id, valid.slug);
      if (existing) return existing;
      if (department.status !== 'active') throw new AppError('IAM_ARCHIVED', 'The department is archived and accepts no new projects');
      const project = await this.store.createProject(tx, { ...valid, organizationId: department.organizationId });
      await this.announceProject(tx, 'created', project, origin, null, { slug: project.slug, name: project.name });
      return project;
    });
  }

  // --------------------------------------------------------------- events

  private async announceDepartment(
    tx: IamTransaction,
    change: 'created' | 'updated' | 'archived',
    department: Department,
    origin: EventOrigin,
    scope: string | null,
    details: Record<string, unknown>,
  ): Promise<void> {
    await this.outbox.add(tx, departmentEvent(change, department, origin));
    const action = change === 'created' ? 'iam.department.create' : change === 'updated' ? 'iam.department.update' : 'iam.department.archive';
    await this.outbox.add(tx, this.audit(action, origin, scope, department, details));
  }

  private async announceProject(
    tx: IamTransaction,
    change: 'created' | 'updated' | 'archived',
    project: Project,
    origin: EventOrigin,
    scope: string | null,
    details: Record<string, unknown>,
  ): Promise<void> {
    await this.outbox.add(tx, projectEvent(change, project, origin));
    const action = change === 'created' ? 'iam.project.create' : change === 'updated' ? 'iam.project.update' : 'iam.project.archive';
    await this.outbox.add(tx, this.audit(action, origin, scope, project, details));
  }

  private audit(action: string, origin: AuditCaller, scope: string | null, node: Organization | Department | Project, details: Record<string, unknown>) {
    const resource = resourceOf(node);
    const type = 'departmentId' in node ? 'project' : 'organizationId' in node ? 'department' : 'organization';
    return auditEvent({ action, outcome: 'succeeded', caller: origin, scope, resource: { ...resource, type, id: node.id }, details });
  }
}
