import { AccessModelReader } from '@aifactory/access-model';
import {
  Access,
  Catalog,
  DenyAuditor,
  OutboxDenySink,
  deprecatedScopeReporter,
  type DenyAuditorOptions,
  type DenyInput,
  type DenySink,
} from '@aifactory/authz';
import { systemClock, type Clock } from '@aifactory/clock';
import type { EventPublisher } from '@aifactory/contracts';
import { AppError } from '@aifactory/errors';
import type { Logger } from '@aifactory/logging';
import type { Principal } from '@aifactory/service-auth';
import type { ServiceMetrics } from '@aifactory/telemetry';
import type { NatsConnection } from '@nats-io/transport-node';
import type { OutboxSource } from './outbox.js';

/**
 * A subgraph's side of ARCHITECTURE.md "Authorization directive": the role
 * catalogue and policy snapshots from IAM's read model, and one `Access` per
 * request that the `@scopes` directive and the domain services ask. Denies
 * are audited through the subgraph's own outbox, coalesced.
 */
export interface AccessControl {
  reader: AccessModelReader;
  denies: DenyAuditor;
  /** Refuses with SERVICE_NOT_READY until IAM's catalogue has been read once: nothing is authorized without it. */
  accessFor(principal: Principal, correlationId: string): Access;
  stop(): Promise<void>;
}

export interface AccessControlWiring {
  publisher: EventPublisher;
  nats: NatsConnection;
  subjectPrefix: string;
  logger: Logger;
  metrics: ServiceMetrics;
  /** Where denies are written; a subgraph without an outbox logs them only. */
  outbox?: OutboxSource;
  /** How old IAM's heartbeat may be before the reader reports the model stale (readiness and policy gates use it). */
  maxAgeMs: number;
  clock?: Clock;
}

/**
 * Fills a deny's audit record with the party a service acted for and the
 * act chain (issue 15: every service-to-service call is attributable in
 * audit). `DenyAuditor.record` builds the record from the principal and hands
 * it to its sink in the same synchronous step, so the principal being
 * recorded is known here while the sink writes. Coalescing stays the
 * auditor's: one record per service, scope, resource and minute.
 */
export function attributingDenyAuditor(options: Omit<DenyAuditorOptions, 'sink'> & { sink: DenySink }): DenyAuditor {
  let recording: Principal | undefined;
  const inner = options.sink;
  const sink: DenySink = {
    write: (denied) => {
      const principal = recording;
      if (principal?.type !== 'service' || principal.onBehalfOf === undefined) return inner.write(denied);
      const record = { ...denied.record, onBehalfOf: { type: principal.onBehalfOf.type, id: principal.onBehalfOf.subject } };
      if (principal.actorChain !== undefined) Object.assign(record, { actorChain: principal.actorChain });
      return inner.write({ ...denied, record });
    },
  };
  class AttributingDenyAuditor extends DenyAuditor {
    override record(input: DenyInput): void {
      recording = input.principal;
      try {
        super.record(input);
      } finally {
        recording = undefined;
      }
    }
  }
  return new AttributingDenyAuditor({ ...options, sink });
}

/** A subgraph without an outbox still refuses; it can only log the deny. */
class LoggedDenySink implements DenySink {
  constructor(private readonly logger: Logger) {}
  async write(denied: Parameters<DenySink['write']>[0]): Promise<void> {
    this.logger.warn({ deny: denied.record }, 'access denied');
  }
}

export async function startAccessControl(wiring: AccessControlWiring): Promise<AccessControl> {
  const clock = wiring.clock ?? systemClock;
  const reader = new AccessModelReader({
    nc: wiring.nats,
    subjectPrefix: wiring.subjectPrefix,
    clock,
    logger: wiring.logger,
    maxAgeMs: wiring.maxAgeMs,
    keys: 'catalog-and-policy',
  });
  // Built before the reader starts: a failure here leaves no watch running.
  const sink = wiring.outbox
    ? new OutboxDenySink(wiring.outbox.pool, wiring.outbox.schema, wiring.subjectPrefix)
    : new LoggedDenySink(wiring.logger);
  const denies = attributingDenyAuditor({ publisher: wiring.publisher, sink, logger: wiring.logger, clock, metrics: wiring.metrics });
  const onDeprecated = deprecatedScopeReporter({ logger: wiring.logger, metrics: wiring.metrics });
  await reader.start();
  // The snapshot object changes identity on every catalogue update, so one Catalog is built per version, not per request.
  let catalog: { snapshot: object; catalog: Catalog } | undefined;
  const currentCatalog = (): Catalog => {
    const snapshot = reader.catalog();
    if (!snapshot) throw new AppError('SERVICE_NOT_READY', 'The authorization catalogue has not been loaded yet');
    if (catalog?.snapshot !== snapshot) catalog = { snapshot, catalog: new Catalog(snapshot) };
    return catalog.catalog;
  };
  return {
    reader,
    denies,
    accessFor: (principal, correlationId) => new Access({ principal, catalog: currentCatalog(), correlationId, denies, onDeprecated }),
    stop: async () => {
      await reader.stop();
      await denies.flush();
    },
  };
}
