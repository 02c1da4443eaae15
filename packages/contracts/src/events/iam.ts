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

const lifecycle = z.enum(['active', 'archived']);

/** A department's state; archived departments accept no new projects or resources. */
export const departmentStateSchema = z.object({
  id: z.uuid(),
  organizationId: z.uuid(),
  slug: z.string().min(1).max(63),
  name: z.string().min(1),
  status: lifecycle,
});
export type DepartmentState = z.infer<typeof departmentStateSchema>;

/** A project's state; every resource of every product references one. */
export const projectStateSchema = z.object({
  id: z.uuid(),
  organizationId: z.uuid(),
  departmentId: z.uuid(),
  slug: z.string().min(1).max(63),
  name: z.string().min(1),
  status: lifecycle,
});
export type ProjectState = z.infer<typeof projectStateSchema>;

function hierarchyEvents<P extends z.ZodType>(aggregate: 'department' | 'project', payload: P) {
  const event = (name: 'created' | 'updated' | 'archived', description: string) =>
    defineEvent({
      type: `platform.iam.${aggregate}.${name}`,
      version: 1,
      subject: `${SUBJECT_FAMILIES.platformIam}.${aggregate}.${name}`,
      kind: 'state',
      aggregateType: aggregate,
      description,
      payload,
    });
  return {
    created: event('created', `A ${aggregate} was created; its aggregate version is 1.`),
    updated: event('updated', `A ${aggregate} was renamed; the payload is its state after the change.`),
    archived: event(
      'archived',
      `A ${aggregate} was archived: it takes no new resources, and every domain stops starting new ones in it.`,
    ),
  };
}

export const DEPARTMENT_EVENTS = hierarchyEvents('department', departmentStateSchema);
export const PROJECT_EVENTS = hierarchyEvents('project', projectStateSchema);

/**
 * A membership or invitation changed. `status` is its state after the
 * change: `pending` (an invitation to an email), `active`, or `removed`.
 */
export const membershipChangedPayloadSchema = z.object({
  membershipId: z.uuid(),
  organizationId: z.uuid(),
  level: z.enum(['organization', 'department', 'project']),
  /** The organization, department or project the role is held on. */
  nodeId: z.uuid(),
  departmentId: z.uuid().nullable(),
  projectId: z.uuid().nullable(),
  role: z.string().min(1),
  status: z.enum(['pending', 'active', 'removed']),
  userId: z.uuid().nullable(),
  change: z.enum(['invited', 'claimed', 'granted', 'changed', 'removed', 'revoked']),
});
export type MembershipChangedPayload = z.infer<typeof membershipChangedPayloadSchema>;

export const membershipChangedV1 = defineEvent({
  type: 'platform.iam.membership.changed',
  version: 1,
  subject: `${SUBJECT_FAMILIES.platformIam}.membership.changed`,
  kind: 'state',
  aggregateType: 'membership',
  description: 'A role was granted, changed or removed, or an invitation was sent, claimed or revoked.',
  payload: membershipChangedPayloadSchema,
});

/**
 * A user's profile or access changed: first sign-in, a new email or name, a
 * platform role, or any of their memberships. Its version is the user's
 * access version, which IAM's read model keeps only when it grows.
 */
export const userChangedPayloadSchema = z.object({
  id: z.uuid(),
  email: z.string().nullable(),
  name: z.string().nullable(),
  platformRoles: z.array(z.enum(['platform_admin', 'internal_developer'])),
});
export type UserChangedPayload = z.infer<typeof userChangedPayloadSchema>;

export const userChangedV1 = defineEvent({
  type: 'platform.iam.user.changed',
  version: 1,
  subject: `${SUBJECT_FAMILIES.platformIam}.user.changed`,
  kind: 'state',
  aggregateType: 'user',
  description: "A user's profile, platform roles or memberships changed; the payload is the profile after the change.",
  payload: userChangedPayloadSchema,
});

/** Every policy change bumps one policy version: the aggregate is `policy/global`. */
export const policyChangedPayloadSchema = z.object({
  version: z.number().int().positive(),
  change: z.enum(['value_set', 'value_cleared', 'plan_defined', 'plan_assigned', 'key_defined']),
  level: z.enum(['global', 'plan', 'organization', 'department', 'project']).nullable(),
  /** The plan, organization, department or project the change is at; null at global level. */
  targetId: z.uuid().nullable(),
  key: z.string().nullable(),
  value: z.union([z.string(), z.boolean()]).nullable(),
});
export type PolicyChangedPayload = z.infer<typeof policyChangedPayloadSchema>;

export const policyChangedV1 = defineEvent({
  type: 'platform.iam.policy.changed',
  version: 1,
  subject: `${SUBJECT_FAMILIES.platformIam}.policy.changed`,
  kind: 'state',
  aggregateType: 'policy',
  description: 'A policy value was set or cleared, or a plan defined or assigned; consumers refresh their snapshots.',
  payload: policyChangedPayloadSchema,
});

/** A registry entry was added or changed; the registry's version grew by one. */
export const registryChangedPayloadSchema = z.object({
  registry: z.enum(['products', 'scopes', 'resource_types', 'audit_actions', 'roles', 'policy_keys']),
  version: z.number().int().positive(),
  entryId: z.string().min(1),
  change: z.enum(['registered', 'updated', 'deprecated', 'retired', 'reactivated']),
});
export type RegistryChangedPayload = z.infer<typeof registryChangedPayloadSchema>;

export const registryChangedV1 = defineEvent({
  type: 'platform.iam.registry.changed',
  version: 1,
  subject: `${SUBJECT_FAMILIES.platformIam}.registry.changed`,
  kind: 'state',
  aggregateType: 'registry',
  description: 'A registry entry was registered or changed its lifecycle; the registry version it carries is the new one.',
  payload: registryChangedPayloadSchema,
});

/** A `key=value` label on a service account or API key: for people and tooling, never for authorization. */
export const labelSchema = z.object({
  key: z.string().regex(/^[a-z][a-z0-9_.-]{0,62}$/),
  value: z.string().max(256),
});
export type Label = z.infer<typeof labelSchema>;

const instant = z.iso.datetime({ offset: true });

/** A project's machine identity; its API keys are its credentials. */
export const serviceAccountStateSchema = z.object({
  id: z.uuid(),
  organizationId: z.uuid(),
  departmentId: z.uuid(),
  projectId: z.uuid(),
  name: z.string().min(1),
  description: z.string(),
  labels: z.array(labelSchema),
  status: lifecycle,
});
export type ServiceAccountState = z.infer<typeof serviceAccountStateSchema>;

export const serviceAccountCreatedV1 = defineEvent({
  type: 'platform.iam.service_account.created',
  version: 1,
  subject: `${SUBJECT_FAMILIES.platformIam}.service_account.created`,
  kind: 'state',
  aggregateType: 'service_account',
  description: 'A service account was created in a project; its aggregate version is 1.',
  payload: serviceAccountStateSchema,
});

/**
 * An API key as events carry it (issue 15): ids, prefix, scopes, labels and
 * lifecycle. Never its hash and never its secret: the schema has no field
 * either could travel in, and the outbox writer stores only what it parses.
 */
export const apiKeyStateSchema = z.object({
  keyId: z.string().regex(/^[a-z2-7]{20}$/),
  serviceAccountId: z.uuid(),
  organizationId: z.uuid(),
  departmentId: z.uuid(),
  projectId: z.uuid(),
  /** `aif_<env>_<keyId>`: safe to show and log. */
  prefix: z.string().min(1),
  scopes: z.array(z.string().min(1)),
  labels: z.array(labelSchema),
  status: z.enum(['active', 'revoked']),
  expiresAt: instant.nullable(),
  /** Set on the old key of a rotation: it keeps working until then. */
  graceUntil: instant.nullable(),
  rotatedToKeyId: z.string().nullable(),
  rotatedFromKeyId: z.string().nullable(),
  revokedAt: instant.nullable(),
  /** The IAM user who created it; null when a non-human did. */
  createdBy: z.uuid().nullable(),
  /** When its creator stopped holding any role in the organization; the key keeps working. */
  creatorLeftAt: instant.nullable(),
  /** The catalog version it was issued under. */
  registryVersion: z.number().int().nonnegative(),
});
export type ApiKeyState = z.infer<typeof apiKeyStateSchema>;

function apiKeyEvent<P extends z.ZodType>(name: 'created' | 'rotated' | 'revoked' | 'updated', description: string, payload: P) {
  return defineEvent({
    type: `platform.iam.api_key.${name}`,
    version: 1,
    subject: `${SUBJECT_FAMILIES.platformIam}.api_key.${name}`,
    kind: 'state',
    aggregateType: 'api_key',
    description,
    payload,
  });
}

export const apiKeyUpdatedPayloadSchema = apiKeyStateSchema.extend({
  /** Why: re-hashed under a newer pepper version, its creator left the organization, or its project was archived. */
  change: z.enum(['rehashed', 'creator_left', 'project_archived']),
});
export type ApiKeyUpdatedPayload = z.infer<typeof apiKeyUpdatedPayloadSchema>;

export const API_KEY_EVENTS = {
  created: apiKeyEvent('created', "An API key was created (a rotation's new key names the old one in rotatedFromKeyId); version 1.", apiKeyStateSchema),
  rotated: apiKeyEvent('rotated', 'An API key was rotated: it names its successor and works until graceUntil.', apiKeyStateSchema),
  revoked: apiKeyEvent('revoked', 'An API key was revoked and stops at once.', apiKeyStateSchema),
  updated: apiKeyEvent(
    'updated',
    'An API key was re-hashed, flagged (its creator left) or suspended with its project; last use is never announced.',
    apiKeyUpdatedPayloadSchema,
  ),
} as const;

/** A platform service identity (issue 15, Service identity): what it may claim and call, and the kids of its usable public keys. */
export const serviceIdentityStateSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9-]*$/),
  status: z.enum(['active', 'disabled']),
  scopes: z.array(z.string()),
  audiences: z.array(z.string()),
  /** RFC 7638 thumbprints of its public keys that are not retired. */
  kids: z.array(z.string()),
  disabledReason: z.string().nullable(),
  change: z.enum(['disabled', 'enabled', 'key_registered', 'key_retired']),
});
export type ServiceIdentityState = z.infer<typeof serviceIdentityStateSchema>;

export const serviceIdentityUpdatedV1 = defineEvent({
  type: 'platform.iam.service_identity.updated',
  version: 1,
  subject: `${SUBJECT_FAMILIES.platformIam}.service_identity.updated`,
  kind: 'state',
  aggregateType: 'service_identity',
  description: 'A platform service identity was disabled or enabled, or one of its public keys registered or retired.',
  payload: serviceIdentityStateSchema,
});

export const IAM_EVENTS = [
  organizationCreatedV1,
  organizationUpdatedV1,
  ...Object.values(DEPARTMENT_EVENTS),
  ...Object.values(PROJECT_EVENTS),
  membershipChangedV1,
  userChangedV1,
  policyChangedV1,
  registryChangedV1,
  serviceAccountCreatedV1,
  ...Object.values(API_KEY_EVENTS),
  serviceIdentityUpdatedV1,
] as const;
