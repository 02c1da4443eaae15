import { EVENT_HEADERS, prefixSubject } from '@aifactory/contracts';
import { writeOutboxEvent, type Queryable } from '@aifactory/events';
import type { JetStreamClient } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import { deniedAccessEnvelope, type DeniedAccess } from './deny-event.js';

/** Where a coalesced deny goes. A write may be repeated (another instance, a retry): the id makes it idempotent. */
export interface DenySink {
  write(denied: DeniedAccess): Promise<void>;
}

/**
 * Writes the deny into the service's own outbox, for services that have one:
 * the relay publishes it like every other event. It runs as one statement of
 * its own on the pool, never inside the request's transaction, because the
 * request that was denied usually rolls back and the deny must survive that.
 * A row already written with this id (another instance saw the same deny this
 * minute) is left as it is.
 */
export class OutboxDenySink implements DenySink {
  constructor(
    private readonly pool: Queryable,
    private readonly schema: string,
    private readonly subjectPrefix?: string,
  ) {}

  async write(denied: DeniedAccess): Promise<void> {
    const envelope = deniedAccessEnvelope(denied);
    await writeOutboxEvent(
      this.pool,
      {
        id: envelope.id,
        type: envelope.type,
        version: envelope.version,
        payload: envelope.payload,
        aggregateId: envelope.aggregateId,
        aggregateVersion: envelope.aggregateVersion,
        actor: envelope.actor,
        organizationId: envelope.organizationId,
        departmentId: envelope.departmentId,
        projectId: envelope.projectId,
        registryVersions: envelope.registryVersions,
        occurredAt: denied.occurredAt,
        correlationId: envelope.correlationId,
        traceparent: envelope.traceparent,
      },
      { schema: this.schema, onConflict: 'ignore', ...(this.subjectPrefix ? { subjectPrefix: this.subjectPrefix } : {}) },
    );
  }
}

/**
 * Publishes the deny straight to JetStream, for services without an outbox
 * (the gateway). The body and headers are what the outbox relay publishes,
 * and the msg id is the deterministic event id, so JetStream drops a second
 * instance's copy within its duplicate window.
 */
export class JetStreamDenySink implements DenySink {
  constructor(
    private readonly js: Pick<JetStreamClient, 'publish'>,
    private readonly subjectPrefix?: string,
  ) {}

  async write(denied: DeniedAccess): Promise<void> {
    const envelope = deniedAccessEnvelope(denied);
    const h = headers();
    h.set(EVENT_HEADERS.correlationId, envelope.correlationId);
    await this.js.publish(prefixSubject(envelope.type, this.subjectPrefix), JSON.stringify(envelope), { msgID: envelope.id, headers: h });
  }
}
