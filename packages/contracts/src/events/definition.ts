import type { z } from 'zod';

/**
 * How a consumer applies an event (ARCHITECTURE.md, Decisions: Outbox and
 * events): a `state` event carries the aggregate's current state, so one
 * older than the version already applied is dropped; in a `sequenced` story
 * every step matters, so a consumer applies exactly the next version and naks
 * a gap until the missing one arrives.
 */
export type EventKind = 'state' | 'sequenced';

/**
 * One event contract: the published language between domains. The subject is
 * where it is published (before any test prefix); `aggregateType` is what the
 * envelope's aggregate id and version count.
 */
export interface EventDefinition<P extends z.ZodType = z.ZodType> {
  readonly type: string;
  readonly version: number;
  readonly subject: string;
  readonly kind: EventKind;
  readonly aggregateType: string;
  readonly description: string;
  readonly payload: P;
}

/** Keeps each definition's literal type and its payload schema's type. */
export function defineEvent<const T extends string, const V extends number, P extends z.ZodType>(
  definition: EventDefinition<P> & { type: T; version: V },
): EventDefinition<P> & { type: T; version: V } {
  return Object.freeze(definition);
}
