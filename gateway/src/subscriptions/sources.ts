import { organizationUpdatedV1, prefixSubject, type EventEnvelope } from '@aifactory/contracts';

/**
 * Where a subscription root field's events come from (ARCHITECTURE.md,
 * Decisions: Subscriptions): the owning domain's outbox event, whose payload
 * carries the entity's key fields and state, and which events concern one
 * subscription's arguments.
 */
export interface SubscriptionSource {
  subject: string;
  eventType: string;
  /** The entity type the root field returns; the payload is its representation. */
  typename: string;
  matches(args: Record<string, unknown>, event: EventEnvelope): boolean;
}

const SOURCES: Record<string, Omit<SubscriptionSource, 'subject'> & { baseSubject: string }> = {
  organizationUpdated: {
    baseSubject: organizationUpdatedV1.subject,
    eventType: organizationUpdatedV1.type,
    typename: 'Organization',
    matches: (args, event) => event.payload.id === args.id,
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
  };
}
