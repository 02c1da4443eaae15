/**
 * The tables every JetStream consumer keeps in its own subgraph's schema. A
 * subgraph pastes `CONSUMER_TABLES_SQL('<schema>')` into one of its
 * migrations; tests run it in a private schema.
 *
 * Each table carries the consumer's durable name: one schema may host several
 * consumers, and two of them that both receive an event must each apply it
 * (a shared `event_id` key would let the first one hide it from the second).
 */

import { AppError } from '@aifactory/errors';

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** The schema name, checked and double-quoted, for SQL built from it. */
export function quoteSchema(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) {
    throw new AppError('INTERNAL_ERROR', 'Internal error', {
      details: { reason: `schema name ${JSON.stringify(schema)} must match ${SCHEMA_NAME.source}` },
    });
  }
  return `"${schema}"`;
}

/**
 * Idempotency by event id (ARCHITECTURE.md, Outbox and events): written in
 * the same transaction as the effect, so a redelivered id changes nothing.
 * `outcome` says whether the event changed anything or was dropped by the
 * version rule.
 */
export function PROCESSED_EVENTS_SQL(schema: string): string {
  const s = quoteSchema(schema);
  return `CREATE TABLE IF NOT EXISTS ${s}.processed_events (
  consumer          text        NOT NULL,
  event_id          uuid        NOT NULL,
  aggregate_type    text        NOT NULL,
  aggregate_id      text        NOT NULL,
  aggregate_version integer     NOT NULL CHECK (aggregate_version > 0),
  outcome           text        NOT NULL CHECK (outcome IN ('applied', 'skipped')),
  processed_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);
`;
}

/** The last version of each aggregate this consumer applied (0: none yet). */
export function AGGREGATE_VERSIONS_SQL(schema: string): string {
  const s = quoteSchema(schema);
  return `CREATE TABLE IF NOT EXISTS ${s}.aggregate_versions (
  consumer       text    NOT NULL,
  aggregate_type text    NOT NULL,
  aggregate_id   text    NOT NULL,
  version        integer NOT NULL CHECK (version >= 0),
  PRIMARY KEY (consumer, aggregate_type, aggregate_id)
);
`;
}

/**
 * Events the consumer gave up on, with the envelope as received so they can
 * be replayed. `event_id` is the envelope's id, or the JetStream msg id (or
 * `<stream>:<sequence>`) when the message was not a readable envelope.
 */
export function DEAD_LETTERS_SQL(schema: string): string {
  const s = quoteSchema(schema);
  return `CREATE TABLE IF NOT EXISTS ${s}.dead_letters (
  consumer   text        NOT NULL,
  event_id   text        NOT NULL,
  subject    text        NOT NULL,
  envelope   jsonb       NOT NULL,
  reason     text        NOT NULL,
  detail     text,
  deliveries integer     NOT NULL CHECK (deliveries > 0),
  dead_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);
`;
}

/** All three tables, for one migration. */
export function CONSUMER_TABLES_SQL(schema: string): string {
  return [PROCESSED_EVENTS_SQL(schema), AGGREGATE_VERSIONS_SQL(schema), DEAD_LETTERS_SQL(schema)].join('\n');
}
