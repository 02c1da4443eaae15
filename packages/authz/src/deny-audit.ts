import { systemClock, type Clock } from '@aifactory/clock';
import { loadRegistryData, type AuditActionRow, type EventPublisher } from '@aifactory/contracts';
import type { Logger } from '@aifactory/logging';
import type { Principal } from '@aifactory/service-auth';
import type { Counter, ServiceMetrics } from '@aifactory/telemetry';
import { denyActionId, denyEventId, utcMinute, type DeniedAccess } from './deny-event.js';
import type { DenySink } from './deny-sinks.js';
import type { AuthzResource } from './model.js';

export interface DenyAuditorOptions {
  publisher: EventPublisher;
  sink: DenySink;
  logger: Logger;
  clock?: Clock;
  metrics?: ServiceMetrics;
  /** Distinct denies remembered per minute; past it the oldest are forgotten and may be written again (and deduped by id). */
  maxEntries?: number;
}

export interface DenyInput {
  principal: Principal;
  /** Null where no scope was checked (a role gate). */
  scope: string | null;
  resource: AuthzResource | null;
  /** The canonical resource id where the caller has one; the coalescing key falls back to the resource's ids. */
  resourceId: string | null;
  correlationId: string;
  /** Safe text: why access was refused. */
  reason: string;
  registryVersions?: Record<string, number>;
}

const DEFAULT_MAX_ENTRIES = 10_000;
const MAX_REASON_CHARS = 500;

/**
 * Audits denies without letting them cost the request or flood the trail
 * (plan-iam.md, Audit events): identical denies (same principal, scope,
 * resource and UTC minute) are written once. Repeats within the minute are
 * skipped here without I/O; a second instance or a retry derives the same
 * event id and is deduped by the outbox key or JetStream's msg id. A failed
 * write is logged and counted, never thrown: the caller is already answering
 * with AUTH_FORBIDDEN.
 */
export class DenyAuditor {
  private readonly options: DenyAuditorOptions;
  private readonly clock: Clock;
  private readonly action: AuditActionRow;
  private readonly maxEntries: number;
  private minute = '';
  private readonly seen = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly denies: Counter<'reason'> | undefined;
  private readonly failures: Counter<never> | undefined;

  constructor(options: DenyAuditorOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    const actionId = denyActionId(options.publisher);
    const action = loadRegistryData().auditActions.find((row) => row.id === actionId);
    if (action === undefined) throw new RangeError(`audit action ${actionId} is not registered in audit-actions.json`);
    this.action = action;
    this.denies = options.metrics?.counter('aif_authz_denies_total', 'Authorization denies, before coalescing, by reason.', ['reason']);
    this.failures = options.metrics?.counter('aif_authz_deny_audit_failures_total', 'Coalesced denies whose audit write failed.', []);
  }

  /** Records one deny; returns at once and never throws. */
  record(input: DenyInput): void {
    let key: string | undefined;
    try {
      this.denies?.inc({ reason: input.reason });
      const nowMs = this.clock.nowMs();
      const minute = utcMinute(nowMs);
      if (minute !== this.minute) {
        // Entries of past minutes can never match again: the key includes the minute.
        this.seen.clear();
        this.minute = minute;
      }
      const principalId = `${input.principal.type}:${input.principal.subject}`;
      const scopeKey = input.scope ?? '-';
      const resourceKey = input.resourceId ?? resourceKeyOf(input.resource);
      const candidate = [principalId, scopeKey, resourceKey].join('\n');
      if (this.seen.has(candidate)) return;
      key = candidate;
      this.remember(key);
      const denied = this.deniedAccess(input, denyEventId(principalId, scopeKey, resourceKey, minute), new Date(nowMs));
      this.track(key, input, this.options.sink.write(denied));
    } catch (error) {
      this.failed(key, input, error);
    }
  }

  /** Waits for every write in flight (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private remember(key: string): void {
    if (this.seen.size >= this.maxEntries) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    this.seen.add(key);
  }

  private track(key: string, input: DenyInput, write: Promise<void>): void {
    const settled = write.catch((error: unknown) => this.failed(key, input, error)).finally(() => this.inFlight.delete(settled));
    this.inFlight.add(settled);
  }

  private deniedAccess(input: DenyInput, id: string, occurredAt: Date): DeniedAccess {
    const { principal } = input;
    return {
      id,
      occurredAt,
      publisher: this.options.publisher,
      actor: { type: principal.type, id: principal.subject },
      organizationId: input.resource?.organizationId ?? null,
      departmentId: input.resource?.departmentId ?? null,
      projectId: input.resource?.projectId ?? null,
      correlationId: input.correlationId,
      registryVersions: input.registryVersions ?? {},
      record: {
        action: this.action.id,
        actionVersion: this.action.version,
        outcome: 'denied',
        privileged: this.action.privileged,
        retentionClass: this.action.retentionClass,
        principal: { type: principal.type, id: principal.subject },
        scope: input.scope,
        resource: input.resourceId,
        correlationId: input.correlationId,
        reason: input.reason.slice(0, MAX_REASON_CHARS),
        details: principal.apiKeyId === undefined ? {} : { apiKeyId: principal.apiKeyId },
      },
    };
  }

  private failed(key: string | undefined, input: DenyInput, error: unknown): void {
    // Forgotten, so the next identical deny tries again (with the same id).
    if (key !== undefined) this.seen.delete(key);
    this.failures?.inc();
    this.options.logger.warn({ err: error, publisher: this.options.publisher, scope: input.scope, reason: input.reason }, 'deny audit write failed');
  }
}

/** Without a canonical id the hierarchy ids still tell resources apart; `-` stands for a resource-less (coarse) deny. */
function resourceKeyOf(resource: AuthzResource | null): string {
  if (resource === null) return '-';
  return `${resource.organizationId}/${resource.departmentId ?? '-'}/${resource.projectId ?? '-'}`;
}
