import { DenyAuditor, JetStreamDenySink, denyActionId } from '@aifactory/authz';
import type { Clock } from '@aifactory/clock';
import { auditEventType, prefixSubject, streamDeclarations } from '@aifactory/contracts';
import { ensureStreams } from '@aifactory/events';
import type { Logger } from '@aifactory/logging';
import type { ServiceMetrics } from '@aifactory/telemetry';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { streamCarrying } from '../subscriptions/streams.js';

export interface DenyAuditOptions {
  nats: NatsConnection;
  subjectPrefix: string | undefined;
  clock: Clock;
  logger: Logger;
  metrics: ServiceMetrics;
}

/**
 * The gateway has no database and so no outbox: its own denies (a
 * subscription refused or ended, introspection refused) go straight to
 * JetStream, coalesced per principal, scope, resource and minute, with the
 * deterministic event id as msg id (issue 14, Authorization). The stream that
 * stores them is ensured here like every service ensures the streams it
 * writes; if that fails the gateway still starts, and each write failure is
 * logged and counted by the auditor.
 */
export async function startDenyAudit(options: DenyAuditOptions): Promise<DenyAuditor> {
  const declarations = streamDeclarations({ subjectPrefix: options.subjectPrefix });
  const stream = streamCarrying(declarations)(prefixSubject(auditEventType(denyActionId('gateway')), options.subjectPrefix));
  try {
    await ensureStreams(
      await jetstreamManager(options.nats),
      declarations.filter((declaration) => declaration.name === stream),
    );
  } catch (error) {
    options.logger.warn({ err: error, stream }, 'could not ensure the audit stream; gateway denies may not be recorded');
  }
  return new DenyAuditor({
    publisher: 'gateway',
    sink: new JetStreamDenySink(jetstream(options.nats), options.subjectPrefix),
    logger: options.logger,
    clock: options.clock,
    metrics: options.metrics,
  });
}
