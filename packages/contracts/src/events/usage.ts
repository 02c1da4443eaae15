import { z } from 'zod';
import { USAGE_PRODUCTS, usageSubject, type UsageProduct } from '../subjects.js';
import type { EventDefinition } from './definition.js';

/**
 * Usage shells (ARCHITECTURE.md, Decisions: Usage contract; seed 000's
 * accepted-usage event). Organization, department, project, actor and
 * correlation id travel in the envelope, so payloads hold only what the
 * envelope does not: which resource, which registered unit, when, how much.
 * Quantities are integer base units carried as strings (GPU-seconds,
 * tokens), like every amount in JSON; products send quantities, never prices.
 * `@aifactory/usage-emitter` builds these events for a product's outbox.
 */
const unitId = z.string().regex(/^[a-z][a-z0-9_]*$/);
const quantity = z.string().regex(/^(0|[1-9][0-9]*)$/);
const resource = {
  /** The usage interval or record this event is about; also the envelope's aggregate id. */
  usageId: z.uuid(),
  /** What is consumed, e.g. `gpu_allocation`, `app_instance`, `model`. */
  resourceType: z.string().regex(/^[a-z][a-z0-9_]*$/),
  resourceId: z.string().min(1),
  /** A unit of billing's usage-unit registry (registry/usage-units.json), e.g. `gpu_hour`, `token_input`. */
  unit: unitId,
  /** The unit's registry version the quantity was measured under. */
  unitVersion: z.number().int().positive(),
  /** The API key the usage was made with, when it was (the actor is then the key's service account or user). */
  apiKeyId: z.string().min(1).max(200).optional(),
};

const interval = {
  ...resource,
  /**
   * Base units the resource accrues per second it is held, as a string: an
   * 8-GPU allocation accrues 8 GPU-seconds per second. Absent means 1.
   */
  quantityPerSecond: z.string().regex(/^[1-9][0-9]*$/).optional(),
  openedAt: z.iso.datetime({ offset: true }),
};

/** A long-lived resource started accruing; billing snapshots the price book in force at `openedAt`. */
export const usageOpenedPayloadSchema = z.object(interval);

/** The interval ended; it is version 2 of the same aggregate as its `opened`. */
export const usageClosedPayloadSchema = z.object({ ...interval, closedAt: z.iso.datetime({ offset: true }) });

/** A point event (requests, tokens), rated at the price book in force at `occurredAt`. */
export const usageRecordedPayloadSchema = z.object({
  ...resource,
  quantity,
  occurredAt: z.iso.datetime({ offset: true }),
});

/** The product's own count for a window, so billing can reconcile what it ingested. */
export const usageWindowSummaryPayloadSchema = z.object({
  unit: unitId,
  unitVersion: z.number().int().positive(),
  windowStart: z.iso.datetime({ offset: true }),
  windowEnd: z.iso.datetime({ offset: true }),
  eventCount: z.number().int().nonnegative(),
  quantity,
});

export type UsageOpenedPayload = z.infer<typeof usageOpenedPayloadSchema>;
export type UsageClosedPayload = z.infer<typeof usageClosedPayloadSchema>;
export type UsageRecordedPayload = z.infer<typeof usageRecordedPayloadSchema>;
export type UsageWindowSummaryPayload = z.infer<typeof usageWindowSummaryPayloadSchema>;

/**
 * Which usage events each product emits: long-lived resources (GPU
 * allocations, app instances) emit intervals, Token Factory point events;
 * every product emits window summaries.
 */
export const USAGE_EVENTS_BY_PRODUCT = {
  gpuaas: ['opened', 'closed', 'window_summary'],
  appplatform: ['opened', 'closed', 'window_summary'],
  tokenfactory: ['recorded', 'window_summary'],
} as const satisfies Record<UsageProduct, readonly ('opened' | 'closed' | 'recorded' | 'window_summary')[]>;

type UsageEventName = (typeof USAGE_EVENTS_BY_PRODUCT)[UsageProduct][number];

const USAGE_SHAPES = {
  opened: {
    kind: 'sequenced',
    aggregateType: 'usage_interval',
    description: 'A usage interval opened (version 1 of the interval).',
    payload: usageOpenedPayloadSchema,
  },
  closed: {
    kind: 'sequenced',
    aggregateType: 'usage_interval',
    description: 'A usage interval closed (version 2 of the interval).',
    payload: usageClosedPayloadSchema,
  },
  recorded: {
    kind: 'sequenced',
    aggregateType: 'usage_record',
    description: 'A point usage record (version 1 of its own aggregate).',
    payload: usageRecordedPayloadSchema,
  },
  window_summary: {
    kind: 'state',
    aggregateType: 'usage_window',
    description: "The product's count for one window; a recount supersedes the earlier one.",
    payload: usageWindowSummaryPayloadSchema,
  },
} as const satisfies Record<UsageEventName, Omit<EventDefinition, 'type' | 'version' | 'subject'>>;

export const USAGE_EVENTS: readonly EventDefinition[] = USAGE_PRODUCTS.flatMap((product) =>
  USAGE_EVENTS_BY_PRODUCT[product].map(
    (event): EventDefinition =>
      Object.freeze({
        type: usageSubject(product, event),
        version: 1,
        subject: usageSubject(product, event),
        ...USAGE_SHAPES[event],
      }),
  ),
);
