import { z } from 'zod';
import { EVENT_PUBLISHERS, statusSubject } from '../subjects.js';
import { defineEvent, type EventDefinition } from './definition.js';

/** A component's customer-visible status changed (seed 003: Status/Ops). */
export const statusChangedPayloadSchema = z.object({
  service: z.enum(EVENT_PUBLISHERS),
  status: z.enum(['operational', 'degraded', 'outage', 'maintenance']),
  /** A safe, short reason for operators; never a stack or a secret. */
  reason: z.string().max(500).nullable(),
  changedAt: z.iso.datetime({ offset: true }),
});

export type StatusChangedPayload = z.infer<typeof statusChangedPayloadSchema>;

/** One `platform.status.<service>.changed` per service; the aggregate is the service's status. */
export const STATUS_EVENTS: readonly EventDefinition[] = EVENT_PUBLISHERS.map((service) =>
  defineEvent({
    type: statusSubject(service),
    version: 1,
    subject: statusSubject(service),
    kind: 'state',
    aggregateType: 'service_status',
    description: `The status of ${service} changed; the payload is its status after the change.`,
    payload: statusChangedPayloadSchema,
  }),
);
