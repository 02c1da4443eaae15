import { z } from 'zod';

/**
 * The envelope every cross-domain event travels in (ARCHITECTURE.md, Events
 * and jobs; Decisions: Outbox and events). Each subgraph's `outbox_events`
 * table stores exactly these fields, one column each.
 */
export const actorSchema = z.object({
  type: z.enum(['user', 'service_account', 'service', 'system']),
  id: z.string().min(1),
});

export const eventEnvelopeSchema = z.object({
  id: z.uuid(),
  type: z.string().regex(/^[a-z0-9_]+(\.[a-z0-9_]+)+$/),
  version: z.number().int().positive(),
  occurredAt: z.iso.datetime({ offset: true }),
  correlationId: z.string().min(1),
  traceparent: z.string().nullable(),
  actor: actorSchema,
  organizationId: z.uuid().nullable(),
  departmentId: z.uuid().nullable(),
  projectId: z.uuid().nullable(),
  registryVersions: z.record(z.string(), z.number().int().nonnegative()),
  aggregateType: z.string().min(1),
  aggregateId: z.string().min(1),
  aggregateVersion: z.number().int().positive(),
  payload: z.record(z.string(), z.unknown()),
});

export type EventEnvelope = z.infer<typeof eventEnvelopeSchema>;
export type Actor = z.infer<typeof actorSchema>;

/**
 * NATS headers every published event carries besides its JSON body. The msg
 * id is the event id, so JetStream drops a republish within its duplicate
 * window.
 */
export const EVENT_HEADERS = {
  msgId: 'Nats-Msg-Id',
  correlationId: 'X-Correlation-Id',
  traceparent: 'traceparent',
} as const;
