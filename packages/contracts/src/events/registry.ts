import type { z } from 'zod';
import type { EventEnvelope } from '../envelope.js';
import type { EventDefinition } from './definition.js';
import { AUDIT_EVENTS } from './audit.js';
import { BILLING_EVENTS } from './billing.js';
import { IAM_EVENTS } from './iam.js';
import { STATUS_EVENTS } from './status.js';
import { USAGE_EVENTS } from './usage.js';

/** Every event contract, one entry per type and version. */
export const EVENT_DEFINITIONS: readonly EventDefinition[] = [
  ...IAM_EVENTS,
  ...BILLING_EVENTS,
  ...USAGE_EVENTS,
  ...STATUS_EVENTS,
  ...AUDIT_EVENTS,
];

function registryKey(type: string, version: number): string {
  return `${type}@${version}`;
}

export const EVENT_REGISTRY: ReadonlyMap<string, EventDefinition> = new Map(
  EVENT_DEFINITIONS.map((definition) => [registryKey(definition.type, definition.version), definition]),
);

const KNOWN_TYPES: ReadonlySet<string> = new Set(EVENT_DEFINITIONS.map((definition) => definition.type));

export function findEventDefinition(type: string, version: number): EventDefinition | undefined {
  return EVENT_REGISTRY.get(registryKey(type, version));
}

export type ParseEventFailureReason = 'unknown_type' | 'unknown_version' | 'invalid_payload';

export type ParsedEvent<P extends z.ZodType = z.ZodType> =
  | { ok: true; definition: EventDefinition<P>; payload: z.infer<P> }
  | { ok: false; reason: ParseEventFailureReason; issues: string[] };

/**
 * Finds an envelope's contract and validates its payload. A consumer that
 * gets a failure knows why: a type nobody registered, a version it does not
 * know yet, or a payload that breaks the contract.
 */
export function parseEvent(envelope: Pick<EventEnvelope, 'type' | 'version' | 'payload'>): ParsedEvent {
  const definition = findEventDefinition(envelope.type, envelope.version);
  if (definition === undefined) {
    const reason = KNOWN_TYPES.has(envelope.type) ? 'unknown_version' : 'unknown_type';
    return { ok: false, reason, issues: [] };
  }
  const parsed = definition.payload.safeParse(envelope.payload);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(payload)'}: ${issue.message}`);
    return { ok: false, reason: 'invalid_payload', issues };
  }
  return { ok: true, definition, payload: parsed.data };
}
