/**
 * Subject grammar of the platform's events (ARCHITECTURE.md, Decisions:
 * Outbox and events; seed 003 Event Ownership): `<family>.<aggregate>.<event>`.
 * One domain owns each family, and a service may publish only under its own
 * prefixes, which is what deploy/nats/nats-server.conf enforces.
 */

/** The families of seed 003; audit is further split by publisher. */
export const SUBJECT_FAMILIES = {
  platformIam: 'platform.iam',
  platformBilling: 'platform.billing',
  platformAudit: 'platform.audit',
  platformStatus: 'platform.status',
  gpuaas: 'gpuaas',
  appplatform: 'appplatform',
  tokenfactory: 'tokenfactory',
} as const;

export type SubjectFamily = (typeof SUBJECT_FAMILIES)[keyof typeof SUBJECT_FAMILIES];

/** Products emit usage as `<product>.usage.<event>`, inside their own family. */
export const USAGE_PRODUCTS = ['gpuaas', 'appplatform', 'tokenfactory'] as const;
export type UsageProduct = (typeof USAGE_PRODUCTS)[number];

/**
 * Services that publish events: each writes its audit actions under
 * `platform.audit.<service>.<action>` and its own component status under
 * `platform.status.<service>.changed`.
 */
export const EVENT_PUBLISHERS = ['gateway', 'iam', 'billing', 'evidence', 'gpuaas', 'appplatform', 'tokenfactory'] as const;
export type EventPublisher = (typeof EVENT_PUBLISHERS)[number];

/** Lowercase tokens joined by dots, at least `<family>.<aggregate>.<event>`'s three. */
export const SUBJECT_PATTERN = /^[a-z0-9_]+(\.[a-z0-9_]+){2,}$/;

/** A run-scoped prefix for tests: one lowercase token, prepended as `<prefix>.`. */
export const SUBJECT_PREFIX_PATTERN = /^[a-z][a-z0-9_]{0,31}$/;

export function usageSubject(product: UsageProduct, event: string): string {
  return `${product}.usage.${event}`;
}

export function auditSubject(publisher: EventPublisher, action: string): string {
  return `${SUBJECT_FAMILIES.platformAudit}.${publisher}.${action}`;
}

export function statusSubject(service: EventPublisher): string {
  return `${SUBJECT_FAMILIES.platformStatus}.${service}.changed`;
}

/**
 * The subject as published: tests isolate on a shared server with a prefix
 * per run, and every stream of theirs carries the same prefix.
 */
export function prefixSubject(subject: string, subjectPrefix?: string): string {
  if (subjectPrefix === undefined || subjectPrefix === '') return subject;
  if (!SUBJECT_PREFIX_PATTERN.test(subjectPrefix)) throw new RangeError(`invalid subject prefix: ${subjectPrefix}`);
  return `${subjectPrefix}.${subject}`;
}
