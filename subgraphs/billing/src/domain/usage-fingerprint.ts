import { createHash } from 'node:crypto';
import type { EventEnvelope } from '@aifactory/contracts';

/**
 * What makes two usage events with one id the same event: who and what was
 * used, never how it travelled. A relay that republishes an event gives it a
 * new correlation id, trace and publish time, which must stay a duplicate;
 * the same id with another quantity, unit or scope is a conflict, kept
 * apart and never applied.
 */
export function usageFingerprint(
  envelope: Pick<
    EventEnvelope,
    'type' | 'version' | 'organizationId' | 'departmentId' | 'projectId' | 'actor' | 'aggregateId' | 'aggregateVersion' | 'payload'
  >,
): string {
  const content = {
    type: envelope.type,
    version: envelope.version,
    organizationId: envelope.organizationId,
    departmentId: envelope.departmentId,
    projectId: envelope.projectId,
    actor: envelope.actor,
    aggregateId: envelope.aggregateId,
    aggregateVersion: envelope.aggregateVersion,
    payload: envelope.payload,
  };
  return createHash('sha256').update(canonicalJson(content)).digest('hex');
}

/** JSON with every object's keys sorted, so key order (which JSON does not define) never changes the fingerprint. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item)).join(',')}]`;
  const object = value as Record<string, unknown>;
  let json = '';
  // Hot path (every usage event): plain loops, and sort() compares UTF-16 code units, as JSON key order needs.
  for (const key of Object.keys(object).sort()) {
    const item = object[key];
    if (item === undefined) continue;
    json += `${json === '' ? '' : ','}${JSON.stringify(key)}:${canonicalJson(item)}`;
  }
  return `{${json}}`;
}
