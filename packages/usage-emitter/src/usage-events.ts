import { nameBasedUuid, parseEvent, usageSubject, type Actor, type UsageProduct } from '@aifactory/contracts';
import { AppError } from '@aifactory/errors';
import type { OutboxEventInput } from '@aifactory/events';

/** Whose usage it is: the envelope's organization, department, project and acting user or API key. */
export interface UsageScope {
  organizationId: string;
  departmentId: string;
  projectId: string;
  actor: Actor;
  /** The API key the usage was made with, if any: billing's rollups keep usage per key. */
  apiKeyId?: string;
  /** Defaults to the request's correlation id (the outbox writer fills it in). */
  correlationId?: string;
}

/** What is consumed: the product's own id for this usage, the resource and the registered unit it is counted in. */
interface UsageSubject {
  /** Stable per usage record or interval (a request id, an allocation's usage id): the event ids derive from it. */
  usageId: string;
  /** `gpu_allocation`, `app_instance`, `model`, ... */
  resourceType: string;
  resourceId: string;
  /** A unit of billing's usage-unit registry and the version it was measured under. */
  unit: string;
  unitVersion: number;
}

export interface PointUsage extends UsageSubject {
  /** Integer base units (requests, tokens), above zero. */
  quantity: bigint;
  occurredAt: Date;
}

export interface IntervalUsage extends UsageSubject {
  /** When the resource started accruing (GPUaaS: the allocation went active). */
  openedAt: Date;
  /** Base units accrued per second held (an 8-GPU allocation: 8n GPU-seconds per second); default 1. */
  quantityPerSecond?: bigint;
}

export interface WindowSummary {
  unit: string;
  unitVersion: number;
  windowStart: Date;
  windowEnd: Date;
  /** Usage events the product emitted for this unit in the window, and their total quantity in base units. */
  eventCount: number;
  quantity: bigint;
  /** 1 for the first count of a window, +1 for each recount: a later recount supersedes an earlier one. */
  recount: number;
}

/** Names the event ids of one product's usage: the same usage always gets the same id, so billing counts it once. */
const USAGE_NAMESPACE = Buffer.from('6f8e2c1a4b7d5e908a3c2d1f0e9b7c64', 'hex');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Builds a product's usage events in the Usage contract's shape
 * (ARCHITECTURE.md, Decisions: Usage contract), for the product to write
 * through its own outbox in the transaction of the change they describe:
 * `await outbox.add(tx, usage.opened(scope, interval))`. Point events for
 * requests and tokens, `opened`/`closed` (versions 1 and 2 of one interval)
 * for long-lived resources, and window summaries for reconciliation.
 * Quantities only: pricing is billing's.
 */
export class UsageEvents {
  constructor(readonly product: UsageProduct) {}

  /** A point event (`<product>.usage.recorded`), rated at the price in force at `occurredAt`. */
  recorded(scope: UsageScope, usage: PointUsage): OutboxEventInput {
    if (usage.quantity <= 0n) invalid('quantity must be a positive whole number of base units');
    return this.event('recorded', scope, usage.usageId, 1, usage.occurredAt, {
      ...subjectOf(scope, usage),
      quantity: usage.quantity.toString(),
      occurredAt: instant(usage.occurredAt, 'occurredAt'),
    });
  }

  /** A long-lived resource started accruing (version 1 of its interval). */
  opened(scope: UsageScope, interval: IntervalUsage): OutboxEventInput {
    return this.event('opened', scope, interval.usageId, 1, interval.openedAt, intervalOf(scope, interval));
  }

  /** The interval ended at `closedAt` (version 2): billing bills up to it, however late it arrives. */
  closed(scope: UsageScope, interval: IntervalUsage, closedAt: Date): OutboxEventInput {
    if (instantMs(closedAt, 'closedAt') < instantMs(interval.openedAt, 'openedAt')) invalid('closedAt must not be before openedAt');
    return this.event('closed', scope, interval.usageId, 2, closedAt, { ...intervalOf(scope, interval), closedAt: instant(closedAt, 'closedAt') });
  }

  /** The product's own count of a window, per organization, so billing can reconcile what it ingested. */
  windowSummary(scope: UsageScope, summary: WindowSummary): OutboxEventInput {
    if (instantMs(summary.windowEnd, 'windowEnd') <= instantMs(summary.windowStart, 'windowStart')) invalid('windowEnd must be after windowStart');
    if (!Number.isInteger(summary.eventCount) || summary.eventCount < 0) invalid('eventCount must be a whole number, 0 or more');
    if (summary.quantity < 0n) invalid('quantity must not be negative');
    if (!Number.isInteger(summary.recount) || summary.recount < 1) invalid('recount is 1 for the first count, +1 per recount');
    const aggregateId = `${scope.organizationId}:${summary.unit}:${instant(summary.windowStart, 'windowStart')}`;
    return this.event('window_summary', scope, aggregateId, summary.recount, summary.windowEnd, {
      unit: summary.unit,
      unitVersion: summary.unitVersion,
      windowStart: instant(summary.windowStart, 'windowStart'),
      windowEnd: instant(summary.windowEnd, 'windowEnd'),
      eventCount: summary.eventCount,
      quantity: summary.quantity.toString(),
    });
  }

  private event(
    name: 'recorded' | 'opened' | 'closed' | 'window_summary',
    scope: UsageScope,
    aggregateId: string,
    aggregateVersion: number,
    occurredAt: Date,
    payload: Record<string, unknown>,
  ): OutboxEventInput {
    const type = usageSubject(this.product, name);
    const parsed = parseEvent({ type, version: 1, payload });
    if (!parsed.ok) invalid(`not a valid ${type}: ${parsed.issues.join('; ') || parsed.reason}`);
    for (const id of [scope.organizationId, scope.departmentId, scope.projectId]) {
      if (!UUID.test(id)) invalid('organizationId, departmentId and projectId must be UUIDs');
    }
    return {
      id: nameBasedUuid(USAGE_NAMESPACE, `${type}:${aggregateId}:${aggregateVersion}`),
      type,
      version: 1,
      payload,
      aggregateId,
      aggregateVersion,
      actor: scope.actor,
      organizationId: scope.organizationId,
      departmentId: scope.departmentId,
      projectId: scope.projectId,
      occurredAt,
      ...(scope.correlationId === undefined ? {} : { correlationId: scope.correlationId }),
    };
  }
}

function subjectOf(scope: UsageScope, usage: UsageSubject): Record<string, unknown> {
  if (!UUID.test(usage.usageId)) invalid('usageId must be a UUID');
  return {
    usageId: usage.usageId,
    resourceType: usage.resourceType,
    resourceId: usage.resourceId,
    unit: usage.unit,
    unitVersion: usage.unitVersion,
    ...(scope.apiKeyId === undefined ? {} : { apiKeyId: scope.apiKeyId }),
  };
}

function intervalOf(scope: UsageScope, interval: IntervalUsage): Record<string, unknown> {
  const perSecond = interval.quantityPerSecond ?? 1n;
  if (perSecond <= 0n) invalid('quantityPerSecond must be a positive whole number of base units');
  return { ...subjectOf(scope, interval), quantityPerSecond: perSecond.toString(), openedAt: instant(interval.openedAt, 'openedAt') };
}

function instantMs(at: Date, field: string): number {
  const ms = at instanceof Date ? at.getTime() : Number.NaN;
  if (Number.isNaN(ms)) invalid(`${field} must be a valid date`);
  return ms;
}

function instant(at: Date, field: string): string {
  return new Date(instantMs(at, field)).toISOString();
}

function invalid(message: string): never {
  throw new AppError('BAD_REQUEST_INVALID_INPUT', message);
}
