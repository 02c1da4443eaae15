import type { ServiceMetrics } from '@aifactory/telemetry';
import { outboxTable, type Queryable } from './outbox-table.js';

export interface OutboxSnapshot {
  pending: number;
  failed: number;
  /** Seconds since the oldest pending event occurred; 0 when none is pending. */
  oldestPendingAgeSeconds: number;
}

export async function readOutboxSnapshot(db: Queryable, schema: string): Promise<OutboxSnapshot> {
  const table = outboxTable(schema);
  const { rows } = await db.query<{ pending: number; failed: number; oldest_age: number }>(
    `SELECT (SELECT count(*) FROM ${table} WHERE status = 'pending')::int AS pending,
            (SELECT count(*) FROM ${table} WHERE status = 'failed')::int AS failed,
            (SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(occurred_at)), 0) FROM ${table} WHERE status = 'pending')::float8 AS oldest_age`,
  );
  const row = rows[0];
  return { pending: row?.pending ?? 0, failed: row?.failed ?? 0, oldestPendingAgeSeconds: Math.max(0, row?.oldest_age ?? 0) };
}

type SnapshotSource = () => Promise<OutboxSnapshot>;

/**
 * Gauges are registered once per registry, so every relay of a process adds
 * its schema as a source and one collect reads them all at scrape time.
 */
const sourcesByRegistry = new WeakMap<ServiceMetrics, Map<string, SnapshotSource>>();

export function registerOutboxGauges(metrics: ServiceMetrics, schema: string, source: SnapshotSource): () => void {
  let sources = sourcesByRegistry.get(metrics);
  if (sources === undefined) {
    const all = new Map<string, SnapshotSource>();
    sources = all;
    sourcesByRegistry.set(metrics, all);
    // A scrape collects the three gauges concurrently; they share one query per schema.
    let inFlight: Promise<Map<string, OutboxSnapshot>> | undefined;
    const snapshots = () => {
      inFlight ??= readAll(all).finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    };
    metrics.gauge('aif_outbox_pending_events', 'Outbox events waiting to be published, by schema.', ['schema'], async (gauge) => {
      for (const [name, snapshot] of await snapshots()) gauge.set({ schema: name }, snapshot.pending);
    });
    metrics.gauge(
      'aif_outbox_oldest_pending_age_seconds',
      'Age of the oldest outbox event still waiting to be published (0 when none), by schema.',
      ['schema'],
      async (gauge) => {
        for (const [name, snapshot] of await snapshots()) gauge.set({ schema: name }, snapshot.oldestPendingAgeSeconds);
      },
    );
    metrics.gauge('aif_outbox_failed_events', 'Outbox events given up after their last attempt (see outbox:replay), by schema.', ['schema'], async (gauge) => {
      for (const [name, snapshot] of await snapshots()) gauge.set({ schema: name }, snapshot.failed);
    });
  }
  sources.set(schema, source);
  const registered = sources;
  return () => {
    if (registered.get(schema) === source) registered.delete(schema);
  };
}

async function readAll(sources: Map<string, SnapshotSource>): Promise<Map<string, OutboxSnapshot>> {
  const result = new Map<string, OutboxSnapshot>();
  for (const [schema, source] of sources) {
    // A scrape must not fail because one schema's database is down; its gauges keep their last value.
    const snapshot = await source().catch(() => undefined);
    if (snapshot) result.set(schema, snapshot);
  }
  return result;
}
