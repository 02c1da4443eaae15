import type { AuthzResource } from '@aifactory/authz';
import { organizationUpdatedV1, prefixSubject, type EventEnvelope } from '@aifactory/contracts';

/**
 * Where a subscription root field's events come from (ARCHITECTURE.md,
 * Decisions: Subscriptions): the owning domain's outbox event, whose payload
 * carries the entity's key fields and state, which events concern one
 * subscription's arguments, and the scope a subscriber must hold on the
 * resource the arguments name, at subscribe and on every event.
 */
export interface SubscriptionSource {
  subject: string;
  eventType: string;
  /** The entity type the root field returns; the payload is its representation. */
  typename: string;
  matches(args: Record<string, unknown>, event: EventEnvelope): boolean;
  scope: string;
  resource(args: Record<string, unknown>): AuthzResource;
}

const SOURCES: Record<string, Omit<SubscriptionSource, 'subject'> & { baseSubject: string }> = {
  organizationUpdated: {
    baseSubject: organizationUpdatedV1.subject,
    eventType: organizationUpdatedV1.type,
    typename: 'Organization',
    matches: (args, event) => event.payload.id === args.id,
    // Member-visible: anyone with a grant inside the organization may watch it (plan-iam.md, Coverage).
    scope: 'platform:organization:read',
    resource: (args) => ({ organizationId: String(args.id) }),
  },
};

export function subscriptionSource(rootField: string, subjectPrefix: string | undefined): SubscriptionSource | undefined {
  const source = Object.hasOwn(SOURCES, rootField) ? SOURCES[rootField] : undefined;
  if (!source) return undefined;
  return {
    subject: prefixSubject(source.baseSubject, subjectPrefix),
    eventType: source.eventType,
    typename: source.typename,
    matches: source.matches,
    scope: source.scope,
    resource: source.resource,
  };
}
