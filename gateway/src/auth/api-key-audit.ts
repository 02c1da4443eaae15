import { utcMinute } from '@aifactory/authz';
import type { Clock } from '@aifactory/clock';
import {
  auditEventType,
  EVENT_HEADERS,
  eventEnvelopeSchema,
  formatResourceId,
  GLOBAL_REGION,
  loadRegistryData,
  nameBasedUuid,
  parseEvent,
  prefixSubject,
  type Actor,
  type AuditActionRow,
  type EventEnvelope,
} from '@aifactory/contracts';
import type { Logger } from '@aifactory/logging';
import type { Counter, ServiceMetrics } from '@aifactory/telemetry';
import type { JetStreamClient } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import type { ApiKeyRefusal } from './api-keys.js';

/** Registered in packages/contracts/registry/audit-actions.json. */
export const API_KEY_REFUSE_ACTION = 'gateway.api_key.refuse';

/** Fixed for all time, like the deny namespace: every instance derives the same id for the same refusal. */
const REFUSAL_ID_NAMESPACE = Buffer.from('6f0f3c1e9a7b4d5c8e21b3a4c5d6e7f8', 'hex');
const DEFAULT_MAX_ENTRIES = 10_000;

/** Who is refused before a secret verified: nobody we may name. */
const UNVERIFIED_ACTOR: Actor = { type: 'system', id: 'unauthenticated' };

export interface ApiKeyRefusalAuditorOptions {
  js: Pick<JetStreamClient, 'publish'>;
  subjectPrefix: string | undefined;
  clock: Clock;
  logger: Logger;
  metrics?: ServiceMetrics;
  maxEntries?: number;
}

/**
 * Audits refused key uses (issue 15: "audited: every ... refused use")
 * without letting a flood of bad keys flood the trail: one event per key id
 * (or "malformed"; a rate-limited source: per source), reason and UTC minute, with a deterministic id that is
 * also the JetStream msg id, so a second instance's copy is dropped. Like the
 * gateway's deny audit it goes straight to JetStream (the gateway has no
 * outbox); a failed write is logged and counted, never thrown. The
 * organization, department, project and service account are attached only
 * when the secret verified; the secret and raw key never are.
 */
export class ApiKeyRefusalAuditor {
  private readonly action: AuditActionRow | undefined;
  private readonly maxEntries: number;
  private minute = '';
  private readonly seen = new Set<string>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly failures: Counter<never> | undefined;

  constructor(private readonly options: ApiKeyRefusalAuditorOptions) {
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.action = loadRegistryData().auditActions.find((row) => row.id === API_KEY_REFUSE_ACTION);
    // A registry without the action is a build mismatch: keep serving, say so once, count every lost event.
    if (this.action === undefined) options.logger.error({ action: API_KEY_REFUSE_ACTION }, 'audit action not registered; refused API keys are not audited');
    this.failures = options.metrics?.counter('aif_api_key_refusal_audit_failures_total', 'Coalesced API key refusals whose audit write failed', []);
  }

  /** Records one refusal; returns at once and never throws. */
  record(refusal: ApiKeyRefusal): void {
    let key: string | undefined;
    try {
      const nowMs = this.options.clock.nowMs();
      const minute = utcMinute(nowMs);
      if (minute !== this.minute) {
        this.seen.clear();
        this.minute = minute;
      }
      const candidate = `${coalescedBy(refusal)}\n${refusal.reason}`;
      if (this.seen.has(candidate)) return;
      key = candidate;
      this.remember(key);
      if (this.action === undefined) throw new RangeError(`audit action ${API_KEY_REFUSE_ACTION} is not registered`);
      const envelope = refusalEnvelope(this.action, refusal, minute, new Date(nowMs));
      const write = this.publish(envelope);
      const settled = write.catch((error: unknown) => this.failed(candidate, refusal, error)).finally(() => this.inFlight.delete(settled));
      this.inFlight.add(settled);
    } catch (error) {
      this.failed(key, refusal, error);
    }
  }

  /** Waits for every write in flight (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private async publish(envelope: EventEnvelope): Promise<void> {
    const h = headers();
    h.set(EVENT_HEADERS.correlationId, envelope.correlationId);
    await this.options.js.publish(prefixSubject(envelope.type, this.options.subjectPrefix), JSON.stringify(envelope), { msgID: envelope.id, headers: h });
  }

  private remember(key: string): void {
    if (this.seen.size >= this.maxEntries) {
      const oldest = this.seen.values().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    this.seen.add(key);
  }

  private failed(key: string | undefined, refusal: ApiKeyRefusal, error: unknown): void {
    // Forgotten, so the next identical refusal tries again (with the same id).
    if (key !== undefined) this.seen.delete(key);
    this.failures?.inc();
    this.options.logger.warn({ err: error, keyId: refusal.keyId ?? null, reason: refusal.reason }, 'API key refusal audit write failed');
  }
}

/**
 * What refusals are coalesced by: the key id (or "malformed"); but a source
 * already refused for too many failures could name a new key id with every
 * request, so its refusals are coalesced by the source.
 */
export function coalescedBy(refusal: Pick<ApiKeyRefusal, 'keyId' | 'reason' | 'source'>): string {
  if (refusal.reason === 'rate_limited') return `source:${refusal.source}`;
  return refusal.keyId ?? 'malformed';
}

/** The id of one coalesced refusal: a UUIDv5 over what it is coalesced by (see coalescedBy), reason and minute. */
export function refusalEventId(coalescedOn: string, reason: string, minuteIso: string): string {
  return nameBasedUuid(REFUSAL_ID_NAMESPACE, JSON.stringify([coalescedOn, reason, minuteIso]));
}

/** The envelope the refusal is published in, checked against the audit contract. */
export function refusalEnvelope(action: AuditActionRow, refusal: ApiKeyRefusal, minuteIso: string, occurredAt: Date): EventEnvelope {
  const id = refusalEventId(coalescedBy(refusal), refusal.reason, minuteIso);
  const { entry } = refusal;
  const actor: Actor = entry === undefined ? UNVERIFIED_ACTOR : { type: 'service_account', id: entry.serviceAccountId };
  const type = auditEventType(action.id);
  const parsed = parseEvent({
    type,
    version: 1,
    payload: {
      action: action.id,
      actionVersion: action.version,
      outcome: 'denied',
      privileged: action.privileged,
      retentionClass: action.retentionClass,
      principal: actor,
      scope: null,
      resource: entry === undefined ? null : keyResourceId(entry.organizationId, entry.projectId, entry.keyId),
      correlationId: refusal.correlationId,
      reason: refusal.reason,
      // The first source of the minute; the key id is the public half of the key.
      details: { keyId: refusal.keyId ?? null, source: refusal.source },
    },
  });
  if (!parsed.ok) throw new RangeError(`audit event ${type} v1 refused: ${parsed.reason} ${parsed.issues.join('; ')}`);
  return eventEnvelopeSchema.parse({
    id,
    type,
    version: 1,
    occurredAt: occurredAt.toISOString(),
    correlationId: refusal.correlationId,
    traceparent: null,
    actor,
    organizationId: entry?.organizationId ?? null,
    departmentId: entry?.departmentId ?? null,
    projectId: entry?.projectId ?? null,
    registryVersions: {},
    aggregateType: parsed.definition.aggregateType,
    aggregateId: id,
    aggregateVersion: 1,
    payload: parsed.payload,
  });
}

function keyResourceId(organizationId: string, projectId: string, keyId: string): string | null {
  try {
    return formatResourceId({ region: GLOBAL_REGION, tenantId: organizationId, projectId, resourceType: 'api_key', resourceId: keyId });
  } catch {
    return null;
  }
}
