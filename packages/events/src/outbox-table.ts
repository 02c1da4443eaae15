import type pg from 'pg';

/** A client inside a transaction, a client or a pool: what the outbox helpers need of `pg`. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

const SCHEMA_NAME = /^[a-z][a-z0-9_]{0,62}$/;

/**
 * The qualified outbox table of one subgraph schema. Schema names come from
 * config, never from a request; the pattern keeps them to plain identifiers
 * so they can be spliced into SQL.
 */
export function outboxTable(schema: string): string {
  return `"${checkedSchema(schema)}".outbox_events`;
}

/** The enum type of outbox_events.status, which lives in the same schema. */
export function outboxStatusType(schema: string): string {
  return `"${checkedSchema(schema)}"."OutboxStatus"`;
}

/** The LISTEN/NOTIFY channel a relay of this schema waits on. */
export function outboxChannel(schema: string): string {
  return `outbox_${checkedSchema(schema)}`;
}

function checkedSchema(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) throw new RangeError(`invalid schema name: ${JSON.stringify(schema)}`);
  return schema;
}

/** A row of outbox_events as `pg` returns it. */
export interface OutboxRow {
  id: string;
  type: string;
  version: number;
  subject: string;
  occurred_at: Date;
  correlation_id: string;
  traceparent: string | null;
  actor: { type: 'user' | 'service_account' | 'service' | 'system'; id: string };
  organization_id: string | null;
  department_id: string | null;
  project_id: string | null;
  registry_versions: Record<string, number>;
  aggregate_type: string;
  aggregate_id: string;
  aggregate_version: number;
  payload: Record<string, unknown>;
  attempts: number;
}

export const OUTBOX_ROW_COLUMNS = `id, type, version, subject, occurred_at, correlation_id, traceparent, actor,
  organization_id, department_id, project_id, registry_versions, aggregate_type, aggregate_id,
  aggregate_version, payload, attempts`;
