import {
  DEPARTMENT_EVENTS,
  organizationCreatedV1,
  organizationUpdatedV1,
  PROJECT_EVENTS,
  type DepartmentState,
  type OrganizationState,
  type ProjectState,
} from '@aifactory/contracts';
import type { OutboxEventInput } from '@aifactory/events';
import type { Department, Organization, Project } from '../data/hierarchy.js';
import type { AuditCaller } from './audit.js';

/** Who caused a change and under which correlation id: a request's principal, or a seed. */
export type EventOrigin = AuditCaller;

function organizationState(organization: Organization): OrganizationState {
  return {
    id: organization.id,
    slug: organization.slug,
    name: organization.name,
    billingCurrency: organization.billingCurrency,
    status: organization.status,
  };
}

function departmentState(department: Department): DepartmentState {
  return {
    id: department.id,
    organizationId: department.organizationId,
    slug: department.slug,
    name: department.name,
    status: department.status,
  };
}

function projectState(project: Project): ProjectState {
  return {
    id: project.id,
    organizationId: project.organizationId,
    departmentId: project.departmentId,
    slug: project.slug,
    name: project.name,
    status: project.status,
  };
}

/** `platform.iam.organization.created` v1: the new organization, at version 1. */
export function organizationCreated(organization: Organization, origin: EventOrigin): OutboxEventInput {
  return organizationEvent(organizationCreatedV1, organization, origin);
}

/** `platform.iam.organization.updated` v1: the organization's state after the change, at its new version. */
export function organizationUpdated(organization: Organization, origin: EventOrigin): OutboxEventInput {
  return organizationEvent(organizationUpdatedV1, organization, origin);
}

function organizationEvent(
  definition: typeof organizationCreatedV1 | typeof organizationUpdatedV1,
  organization: Organization,
  origin: EventOrigin,
): OutboxEventInput {
  return {
    type: definition.type,
    version: definition.version,
    aggregateId: organization.id,
    aggregateVersion: organization.version,
    organizationId: organization.id,
    actor: origin.actor,
    correlationId: origin.correlationId,
    payload: organizationState(organization),
  };
}

export type HierarchyChange = 'created' | 'updated' | 'archived';

/** `platform.iam.department.<change>` v1: the department's state after the change, at its version. */
export function departmentEvent(change: HierarchyChange, department: Department, origin: EventOrigin): OutboxEventInput {
  const definition = DEPARTMENT_EVENTS[change];
  return {
    type: definition.type,
    version: definition.version,
    aggregateId: department.id,
    aggregateVersion: department.version,
    organizationId: department.organizationId,
    departmentId: department.id,
    actor: origin.actor,
    correlationId: origin.correlationId,
    payload: departmentState(department),
  };
}

/** `platform.iam.project.<change>` v1: the project's state after the change, at its version. */
export function projectEvent(change: HierarchyChange, project: Project, origin: EventOrigin): OutboxEventInput {
  const definition = PROJECT_EVENTS[change];
  return {
    type: definition.type,
    version: definition.version,
    aggregateId: project.id,
    aggregateVersion: project.version,
    organizationId: project.organizationId,
    departmentId: project.departmentId,
    projectId: project.id,
    actor: origin.actor,
    correlationId: origin.correlationId,
    payload: projectState(project),
  };
}
