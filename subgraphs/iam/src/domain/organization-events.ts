import { organizationCreatedV1, organizationUpdatedV1, type Actor, type OrganizationState } from '@aifactory/contracts';
import type { OutboxEventInput } from '@aifactory/events';
import type { Organization } from '../data/hierarchy.js';

/** Who caused a change and under which correlation id: a request's principal, or a seed. */
export interface EventOrigin {
  actor: Actor;
  correlationId: string;
}

/** The organization's state as its events carry it (packages/contracts iam events). */
function stateOf(organization: Organization): OrganizationState {
  return {
    id: organization.id,
    slug: organization.slug,
    name: organization.name,
    billingCurrency: organization.billingCurrency,
    status: organization.status,
  };
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
    payload: stateOf(organization),
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
