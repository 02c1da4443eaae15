import { z } from 'zod';
import { SUBJECT_FAMILIES } from '../subjects.js';
import { defineEvent } from './definition.js';

/**
 * An organization's key fields. The payload carries them so the gateway can
 * answer a subscription's root fields from the event alone (ARCHITECTURE.md,
 * Decisions: Subscriptions).
 */
export const organizationStateSchema = z.object({
  id: z.uuid(),
  slug: z.string().min(1).max(63),
  name: z.string().min(1),
  /** ISO 4217, as the organizations table constrains it. */
  billingCurrency: z.string().regex(/^[A-Z]{3}$/),
  status: z.enum(['active', 'archived']),
});

export type OrganizationState = z.infer<typeof organizationStateSchema>;

export const organizationCreatedV1 = defineEvent({
  type: 'platform.iam.organization.created',
  version: 1,
  subject: `${SUBJECT_FAMILIES.platformIam}.organization.created`,
  kind: 'state',
  aggregateType: 'organization',
  description: 'An organization was created; its aggregate version is 1.',
  payload: organizationStateSchema,
});

export const organizationUpdatedV1 = defineEvent({
  type: 'platform.iam.organization.updated',
  version: 1,
  subject: `${SUBJECT_FAMILIES.platformIam}.organization.updated`,
  kind: 'state',
  aggregateType: 'organization',
  description: "An organization's name, slug, billing currency or status changed; the payload is its state after the change.",
  payload: organizationStateSchema,
});

export const IAM_EVENTS = [organizationCreatedV1, organizationUpdatedV1] as const;
