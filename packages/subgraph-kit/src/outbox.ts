import type pg from 'pg';
import { streamDeclarations, type Actor, type EventEnvelope } from '@aifactory/contracts';
import { ensureStreams, OutboxRelay, pruneOutbox, writeOutboxEvent, type OutboxEventInput, type Queryable } from '@aifactory/events';
import type { Logger } from '@aifactory/logging';
import type { Principal } from '@aifactory/service-auth';
import type { ServiceMetrics } from '@aifactory/telemetry';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

/** A subgraph's outbox: the app pool of its schema, whose `outbox_events` its relay publishes. */
export interface OutboxSource {
  pool: pg.Pool;
  schema: string;
}

/** How often published events past their retention are deleted. */
const PRUNE_EVERY_MS = 10 * 60_000;

export interface OutboxRelayWiring {
  source: OutboxSource;
  nc: NatsConnection;
  logger: Logger;
  metrics: ServiceMetrics;
  /** EVENT_SUBJECT_PREFIX: the streams declared here carry it, as the subjects written to the outbox do. */
  subjectPrefix: string;
  retentionMs: number;
}

export interface RunningOutboxRelay {
  /** Finishes the batch in flight and any prune, then stops; the pool and NATS stay open for the caller to close. */
  stop(): Promise<void>;
}

/**
 * Runs a subgraph's side of ARCHITECTURE.md "Outbox and events": declares
 * every stream (idempotent, so every service may do it at every start),
 * relays the schema's outbox into JetStream, and prunes published events
 * past their retention at start and every 10 minutes.
 */
export async function startOutboxRelay(wiring: OutboxRelayWiring): Promise<RunningOutboxRelay> {
  const { source, nc, logger, metrics, subjectPrefix, retentionMs } = wiring;
  const streams = await ensureStreams(await jetstreamManager(nc), streamDeclarations({ subjectPrefix }));
  const changed = streams.filter((stream) => stream.change !== 'unchanged');
  if (changed.length > 0) logger.info({ streams: changed }, 'event streams declared');

  const relay = new OutboxRelay({ pool: source.pool, schema: source.schema, nc, logger, metrics, subjectPrefix });
  await relay.start();

  let pruning: Promise<void> | undefined;
  const prune = () => {
    pruning ??= pruneOutbox(source.pool, source.schema, { olderThanMs: retentionMs })
      .then(
        (deleted) => {
          if (deleted > 0) logger.info({ schema: source.schema, deleted }, 'pruned published outbox events');
        },
        // The next round tries again; published rows waiting a little longer harm nobody.
        (error: unknown) => logger.warn({ schema: source.schema, err: error }, 'outbox prune failed'),
      )
      .finally(() => {
        pruning = undefined;
      });
  };
  prune();
  const timer = setInterval(prune, PRUNE_EVERY_MS);
  // The prune loop alone never keeps a process alive.
  timer.unref();

  return {
    stop: async () => {
      clearInterval(timer);
      await relay.stop();
      await pruning;
    },
  };
}

/** What the outbox needs of a Prisma interactive transaction's client (`Prisma.TransactionClient`). */
export interface RawSqlTransaction {
  $executeRawUnsafe(query: string, ...values: unknown[]): PromiseLike<number>;
}

/**
 * Writes domain events into a subgraph's outbox inside the caller's Prisma
 * transaction (STYLE.md rule 4): `await db.$transaction(async (tx) => { ...;
 * await outbox.add(tx, event) })`. The event is published if and only if the
 * transaction commits.
 */
export class Outbox {
  constructor(private readonly options: { schema: string; subjectPrefix?: string }) {}

  add(tx: RawSqlTransaction, event: OutboxEventInput): Promise<EventEnvelope> {
    return writeOutboxEvent(executeOnly(tx), event, this.options);
  }
}

/**
 * The writer only executes its INSERT (it reads nothing back), and Prisma's
 * `$queryRaw` refuses the `void` column its pg_notify returns, so the
 * statement runs through `$executeRawUnsafe`, on the transaction's connection.
 */
function executeOnly(tx: RawSqlTransaction): Queryable {
  return {
    query: async (text, values = []) => {
      const rowCount = await tx.$executeRawUnsafe(text, ...values);
      return { rows: [], rowCount, command: '', oid: 0, fields: [] };
    },
  };
}

/** The envelope's actor for a request's principal. */
export function actorOf(principal: Principal): Actor {
  return { type: principal.type, id: principal.subject };
}
