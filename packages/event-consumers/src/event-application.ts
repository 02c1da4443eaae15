import { eventEnvelopeSchema, type EventEnvelope } from '@aifactory/contracts';
import { runWithCorrelationId } from '@aifactory/logging';
import type pg from 'pg';
import { quoteSchema } from './consumer-tables.js';
import { aggregateKey, planVersions, type EventKind } from './version-rule.js';

/** The transaction a handler does its effect in; commit and rollback belong to the consumer helper. */
export type Transaction = pg.PoolClient;

export type DecodeResult<P> = { ok: true; payload: P } | { ok: false; reason: string; detail?: string };

/**
 * Checks an envelope's type, version and payload against the event contracts
 * (`packages/contracts`); a refusal sends the event to dead letters at once
 * with `reason` ('unknown_type', 'unknown_version', 'invalid_payload', ...).
 */
export type DecodeEvent<P> = (envelope: EventEnvelope) => DecodeResult<P>;

/** Whether the event carries its aggregate's state or one step of its story; undefined: not an event this consumer knows. */
export type KindOf = (envelope: EventEnvelope) => EventKind | undefined;

export interface ConsumedEvent<P> {
  subject: string;
  envelope: EventEnvelope;
  payload: P;
  kind: EventKind;
}

/**
 * Does the consumer's effect for events that passed the idempotency and
 * version checks, in the consumer's own schema, inside `tx`. Events of one
 * aggregate come in ascending version order. Throwing rolls everything back
 * and the events are retried.
 */
export type HandleEvents<P> = (tx: Transaction, events: readonly ConsumedEvent<P>[]) => Promise<void>;

/** What a consumer does with events, independent of where they come from (JetStream or a replay). */
export interface EventApplication<P> {
  pool: pg.Pool;
  /** The consumer's own schema, holding its effect and its consumer tables. */
  schema: string;
  /** The durable name; the consumer tables are keyed by it. */
  consumer: string;
  decode: DecodeEvent<P>;
  kindOf: KindOf;
  handle: HandleEvents<P>;
}

/** A refused body keeps its `envelope` as received (parsed JSON, or the text), so a replay sees what arrived. */
export type ReadEvent<P> =
  | { ok: true; event: ConsumedEvent<P> }
  | { ok: false; eventId: string; envelope: unknown; reason: string; detail: string | null };

/**
 * Turns a message body into an event the consumer can apply, or says why it
 * never can: `invalid_envelope` (not JSON, or not an envelope), the decoder's
 * reason, or `unknown_type` when the consumer has no kind for it.
 * `fallbackId` names the dead letter when the body has no event id.
 */
export function readEvent<P>(
  application: Pick<EventApplication<P>, 'decode' | 'kindOf'>,
  subject: string,
  body: string,
  fallbackId: string,
): ReadEvent<P> {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return { ok: false, eventId: fallbackId, envelope: body, reason: 'invalid_envelope', detail: 'the body is not JSON' };
  }
  const parsed = eventEnvelopeSchema.safeParse(raw);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
    return { ok: false, eventId: idOf(raw) ?? fallbackId, envelope: raw, reason: 'invalid_envelope', detail };
  }
  const envelope = parsed.data;
  const decoded = application.decode(envelope);
  if (!decoded.ok) {
    return { ok: false, eventId: envelope.id, envelope: raw, reason: decoded.reason, detail: decoded.detail ?? null };
  }
  const kind = application.kindOf(envelope);
  if (kind === undefined) {
    return {
      ok: false,
      eventId: envelope.id,
      envelope: raw,
      reason: 'unknown_type',
      detail: `no event kind known for ${envelope.type} v${envelope.version}`,
    };
  }
  return { ok: true, event: { subject, envelope, payload: decoded.payload, kind } };
}

export type ApplyOutcome = 'applied' | 'skipped' | 'duplicate' | 'gap';

/**
 * Applies events inside `tx` with the consumer's rules, and says what became
 * of each (by index):
 * - `duplicate`: its id was processed before (or earlier in this batch); nothing changes;
 * - `skipped`: the version rule dropped it; recorded as processed;
 * - `applied`: handed to the handler and recorded as processed, in the same transaction;
 * - `gap`: a sequenced event whose predecessor has not been applied; nothing recorded.
 * An applied or skipped event's dead letter, if any, is deleted: it is settled.
 */
export async function applyEvents<P>(
  tx: Transaction,
  application: EventApplication<P>,
  events: readonly ConsumedEvent<P>[],
): Promise<ApplyOutcome[]> {
  const s = quoteSchema(application.schema);
  const consumer = application.consumer;
  const outcomes: ApplyOutcome[] = events.map(() => 'duplicate');
  if (events.length === 0) return outcomes;

  // Lock the aggregates first: a second instance holding the same event waits
  // here, then sees it as processed instead of failing on the primary key.
  const aggregates = [...new Map(events.map((e) => [aggregateKeyOf(e), e.envelope])).values()].sort(
    (a, b) => a.aggregateType.localeCompare(b.aggregateType) || a.aggregateId.localeCompare(b.aggregateId),
  );
  const types = aggregates.map((a) => a.aggregateType);
  const ids = aggregates.map((a) => a.aggregateId);
  await tx.query(
    `INSERT INTO ${s}.aggregate_versions (consumer, aggregate_type, aggregate_id, version)
     SELECT $1, t, i, 0 FROM unnest($2::text[], $3::text[]) AS a(t, i)
     ON CONFLICT DO NOTHING`,
    [consumer, types, ids],
  );
  const locked = await tx.query<{ aggregate_type: string; aggregate_id: string; version: number }>(
    `SELECT v.aggregate_type, v.aggregate_id, v.version
       FROM ${s}.aggregate_versions v
       JOIN unnest($2::text[], $3::text[]) AS a(t, i) ON v.aggregate_type = a.t AND v.aggregate_id = a.i
      WHERE v.consumer = $1
      ORDER BY v.aggregate_type, v.aggregate_id
        FOR UPDATE OF v`,
    [consumer, types, ids],
  );
  const applied = new Map(locked.rows.map((row) => [aggregateKey(row.aggregate_type, row.aggregate_id), row.version]));

  const processed = await tx.query<{ event_id: string }>(
    `SELECT event_id::text FROM ${s}.processed_events WHERE consumer = $1 AND event_id = ANY($2::uuid[])`,
    [consumer, events.map((e) => e.envelope.id)],
  );
  const seen = new Set(processed.rows.map((row) => row.event_id));
  const fresh: number[] = [];
  events.forEach((event, index) => {
    if (seen.has(event.envelope.id)) return;
    seen.add(event.envelope.id);
    fresh.push(index);
  });

  const plan = planVersions(
    fresh.map((index) => {
      const { envelope, kind } = events[index]!;
      return { kind, aggregateType: envelope.aggregateType, aggregateId: envelope.aggregateId, aggregateVersion: envelope.aggregateVersion };
    }),
    applied,
  );
  plan.decisions.forEach((decision, i) => {
    outcomes[fresh[i]!] = decision === 'apply' ? 'applied' : decision === 'skip' ? 'skipped' : 'gap';
  });

  const toApply = plan.applyOrder.map((i) => events[fresh[i]!]!);
  if (toApply.length > 0) {
    const handle = () => application.handle(tx, toApply);
    // A single event's handler logs under the correlation id of the request that caused it.
    await (toApply.length === 1 ? runWithCorrelationId(toApply[0]!.envelope.correlationId, handle) : handle());
  }

  const settled = events.flatMap((event, index) => {
    const outcome = outcomes[index];
    return outcome === 'applied' || outcome === 'skipped' ? [{ envelope: event.envelope, outcome }] : [];
  });
  if (settled.length > 0) {
    await tx.query(
      `INSERT INTO ${s}.processed_events (consumer, event_id, aggregate_type, aggregate_id, aggregate_version, outcome)
       SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int[], $6::text[])`,
      [
        consumer,
        settled.map((e) => e.envelope.id),
        settled.map((e) => e.envelope.aggregateType),
        settled.map((e) => e.envelope.aggregateId),
        settled.map((e) => e.envelope.aggregateVersion),
        settled.map((e) => e.outcome),
      ],
    );
    await tx.query(`DELETE FROM ${s}.dead_letters WHERE consumer = $1 AND event_id = ANY($2::text[])`, [
      consumer,
      settled.map((e) => e.envelope.id),
    ]);
  }

  const moved = aggregates.filter((a) => {
    const key = aggregateKey(a.aggregateType, a.aggregateId);
    return (plan.versions.get(key) ?? 0) > (applied.get(key) ?? 0);
  });
  if (moved.length > 0) {
    await tx.query(
      `UPDATE ${s}.aggregate_versions v SET version = u.version
         FROM unnest($2::text[], $3::text[], $4::int[]) AS u(t, i, version)
        WHERE v.consumer = $1 AND v.aggregate_type = u.t AND v.aggregate_id = u.i`,
      [
        consumer,
        moved.map((a) => a.aggregateType),
        moved.map((a) => a.aggregateId),
        moved.map((a) => plan.versions.get(aggregateKey(a.aggregateType, a.aggregateId))!),
      ],
    );
  }
  return outcomes;
}

/** Runs `work` in one transaction on a pooled connection; commits only if it returns. */
export async function inTransaction<T>(pool: pg.Pool, work: (tx: Transaction) => Promise<T>): Promise<T> {
  const tx = await pool.connect();
  let broken: unknown;
  try {
    await tx.query('BEGIN');
    const result = await work(tx);
    await tx.query('COMMIT');
    return result;
  } catch (error) {
    await tx.query('ROLLBACK').catch((rollbackError: unknown) => {
      // A connection that cannot roll back is not given back to the pool.
      broken = rollbackError;
    });
    throw error;
  } finally {
    tx.release(broken instanceof Error ? broken : undefined);
  }
}

function aggregateKeyOf(event: ConsumedEvent<unknown>): string {
  return aggregateKey(event.envelope.aggregateType, event.envelope.aggregateId);
}

function idOf(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null || !('id' in raw)) return undefined;
  const id = (raw as { id: unknown }).id;
  return typeof id === 'string' && id.length > 0 && id.length <= 200 ? id : undefined;
}
