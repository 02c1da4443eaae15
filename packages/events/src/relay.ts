import { EVENT_HEADERS, type EventEnvelope } from '@aifactory/contracts';
import type { Logger } from '@aifactory/logging';
import type { Counter, ServiceMetrics } from '@aifactory/telemetry';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { headers, type NatsConnection, type Status } from '@nats-io/transport-node';
import pg from 'pg';
import { readOutboxSnapshot, registerOutboxGauges } from './outbox-metrics.js';
import {
  OUTBOX_ROW_COLUMNS,
  outboxChannel,
  outboxStatusType,
  outboxTable,
  type OutboxRow,
} from './outbox-table.js';
import { classifyPublishError, type PublishFailure } from './publish-failure.js';

export interface OutboxRelayOptions {
  /** The schema's app pool; the relay holds one of its connections only while a batch is in flight. */
  pool: pg.Pool;
  schema: string;
  nc: NatsConnection;
  logger: Logger;
  metrics?: ServiceMetrics;
  /** Seed 004 1B: batches of 50, oldest first. */
  batchSize?: number;
  /** Seed 004 1B: a 2 s poll with ±200 ms jitter backs up LISTEN/NOTIFY. */
  pollIntervalMs?: number;
  pollJitterMs?: number;
  /** Seed 004 1B: a message JetStream keeps refusing is `failed` after 10 tries. */
  maxAttempts?: number;
  /** Retry n waits min(retryMaxMs, retryBaseMs * 2^(n-1)). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** How long to wait for JetStream's ack before calling it an outage. */
  publishTimeoutMs?: number;
  /** Replaces Math.random for the poll jitter (tests). */
  random?: () => number;
  /**
   * Tests: the relay publishes only subjects under `<prefix>.`; any other row
   * is refused like a JetStream rejection, so a row written without the run's
   * prefix never reaches a shared server's real streams. Empty: no check.
   */
  subjectPrefix?: string;
}

/** What one claim-publish-mark cycle did. */
export interface RelayCycle {
  claimed: number;
  published: number;
  /** Acked as a duplicate: JetStream already held this event id (a republish after a crash). */
  duplicates: number;
  /** Refused by the broker; counted toward `failed`. */
  rejected: number;
  /** Of those, how many reached `failed` with this attempt. */
  failed: number;
  /** The broker did not answer; nothing was counted and the relay paused. */
  outage: boolean;
}

const EMPTY_CYCLE: RelayCycle = { claimed: 0, published: 0, duplicates: 0, rejected: 0, failed: 0, outage: false };
const LAST_ERROR_MAX_CHARS = 1_000;
const RELISTEN_AFTER_MS = 1_000;

type PublishOutcome = { kind: 'published'; duplicate: boolean } | PublishFailure;

/**
 * Moves one schema's outbox into JetStream (ARCHITECTURE.md, Decisions:
 * Outbox and events; seed 004 1B). Each cycle claims due pending rows with
 * `FOR UPDATE SKIP LOCKED`, so several relays share the work and never claim
 * the same row; publishes each with the event id as msg id; and marks the
 * acked rows published in the same transaction. A crash between publish and
 * commit leaves the row pending: the next relay republishes it and
 * JetStream's duplicate window absorbs the copy.
 */
export class OutboxRelay {
  private readonly options: Required<Omit<OutboxRelayOptions, 'metrics'>> & Pick<OutboxRelayOptions, 'metrics'>;
  private readonly js: JetStreamClient;
  private jsm: JetStreamManager | undefined;
  private running = false;
  private paused = false;
  private connected: boolean;
  private loopDone: Promise<void> | undefined;
  private listener: pg.Client | undefined;
  private relistenTimer: NodeJS.Timeout | undefined;
  private statusFeed: AsyncIterable<Status> | undefined;
  private readonly doorbell = new Doorbell();
  private readonly counters: { published?: Counter<'schema'>; duplicates?: Counter<'schema'>; rejected?: Counter<'schema'> } = {};
  private unregisterGauges: (() => void) | undefined;

  constructor(options: OutboxRelayOptions) {
    this.options = {
      batchSize: 50,
      pollIntervalMs: 2_000,
      pollJitterMs: 200,
      maxAttempts: 10,
      retryBaseMs: 1_000,
      retryMaxMs: 5 * 60_000,
      publishTimeoutMs: 5_000,
      random: Math.random,
      subjectPrefix: '',
      ...options,
    };
    // Refuses a schema name that is not a plain identifier before anything runs.
    outboxTable(options.schema);
    this.js = jetstream(options.nc, { timeout: this.options.publishTimeoutMs });
    this.connected = !options.nc.isClosed();
  }

  /** True while the broker is unreachable: nothing is claimed and no attempt is counted. */
  get isPaused(): boolean {
    return this.paused;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const { metrics, schema, pool } = this.options;
    if (metrics) {
      this.counters.published = metrics.counter('aif_outbox_published_total', 'Outbox events JetStream acknowledged, by schema.', ['schema']);
      this.counters.duplicates = metrics.counter(
        'aif_outbox_duplicate_acks_total',
        'Republished outbox events JetStream acknowledged as duplicates (msg id seen within its window), by schema.',
        ['schema'],
      );
      this.counters.rejected = metrics.counter(
        'aif_outbox_publish_rejections_total',
        'Publishes JetStream or NATS refused (each counts toward failed), by schema.',
        ['schema'],
      );
      this.unregisterGauges = registerOutboxGauges(metrics, schema, () => readOutboxSnapshot(pool, schema));
    }
    this.watchConnection();
    await this.listen();
    this.loopDone = this.loop();
  }

  /** Finishes the batch in flight, then stops listening and polling. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.doorbell.ring();
    await this.loopDone;
    clearTimeout(this.relistenTimer);
    stopFeed(this.statusFeed);
    this.unregisterGauges?.();
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
  }

  /**
   * One cycle: claim up to a batch of due pending rows, publish them, record
   * the outcome, commit. Exposed for tests and one-shot tools; a started
   * relay runs it on every wake-up.
   */
  async relayOnce(): Promise<RelayCycle> {
    if (!this.connected) {
      this.pause('nats connection is down');
      return { ...EMPTY_CYCLE, outage: true };
    }
    const { pool, schema, batchSize } = this.options;
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<OutboxRow>(
        `SELECT ${OUTBOX_ROW_COLUMNS}
           FROM ${outboxTable(schema)}
          WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= now())
          ORDER BY occurred_at
          LIMIT $1
          FOR UPDATE SKIP LOCKED`,
        [batchSize],
      );
      if (rows.length === 0) {
        await client.query('COMMIT');
        return EMPTY_CYCLE;
      }
      const outcomes = await this.settleNoStream(await Promise.all(rows.map((row) => this.publish(row))));
      const cycle = await this.record(client, rows, outcomes);
      await client.query('COMMIT');
      this.afterCommit(cycle);
      return cycle;
    } catch (error) {
      broken = error instanceof Error ? error : new Error(String(error));
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      // A client whose transaction failed is discarded rather than reused.
      client.release(broken);
    }
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let again = false;
      try {
        if (this.paused) {
          if (await this.brokerAnswers()) {
            this.resume();
            again = true;
          }
        } else {
          const cycle = await this.relayOnce();
          // A full batch means more may be due: keep going without waiting.
          again = !cycle.outage && cycle.claimed === this.options.batchSize;
        }
      } catch (error) {
        this.options.logger.error({ err: error, schema: this.options.schema }, 'outbox relay cycle failed');
      }
      if (!again && this.running) await this.doorbell.wait(this.nextPollDelay());
    }
  }

  private async publish(row: OutboxRow): Promise<PublishOutcome> {
    const { subjectPrefix } = this.options;
    if (subjectPrefix !== '' && !row.subject.startsWith(`${subjectPrefix}.`)) {
      return { kind: 'rejected', reason: `subject ${row.subject} is outside this relay's prefix ${subjectPrefix}` };
    }
    const h = headers();
    h.set(EVENT_HEADERS.correlationId, row.correlation_id);
    if (row.traceparent) h.set(EVENT_HEADERS.traceparent, row.traceparent);
    try {
      const ack = await this.js.publish(row.subject, JSON.stringify(outboxEnvelopeOf(row)), {
        msgID: row.id,
        headers: h,
        timeout: this.options.publishTimeoutMs,
      });
      return { kind: 'published', duplicate: ack.duplicate };
    } catch (error) {
      const failure = classifyPublishError(error);
      // Whatever the error says, a publish that failed while the connection was down is an outage.
      if (failure.kind !== 'outage' && !this.connected) return { kind: 'outage', reason: `nats disconnected: ${failure.reason}` };
      return failure;
    }
  }

  /**
   * "No responders" means no stream covers the subject only if JetStream
   * itself answers; if it does not, the broker is down and nothing counts.
   */
  private async settleNoStream(outcomes: PublishOutcome[]): Promise<PublishOutcome[]> {
    if (!outcomes.some((outcome) => outcome.kind === 'no_stream')) return outcomes;
    const jetStreamAnswers = await this.brokerAnswers();
    return outcomes.map((outcome) => {
      if (outcome.kind !== 'no_stream') return outcome;
      return jetStreamAnswers
        ? { kind: 'rejected', reason: `no stream accepts this subject (${outcome.reason})` }
        : { kind: 'outage', reason: `jetstream does not answer (${outcome.reason})` };
    });
  }

  private async record(client: pg.PoolClient, rows: OutboxRow[], outcomes: PublishOutcome[]): Promise<RelayCycle> {
    const { schema, maxAttempts } = this.options;
    const table = outboxTable(schema);
    const cycle: RelayCycle = { ...EMPTY_CYCLE, claimed: rows.length };
    const publishedIds: string[] = [];
    const rejected: { row: OutboxRow; reason: string }[] = [];
    rows.forEach((row, index) => {
      const outcome = outcomes[index];
      switch (outcome?.kind) {
        case 'published':
          publishedIds.push(row.id);
          if (outcome.duplicate) cycle.duplicates += 1;
          return;
        case 'rejected':
          rejected.push({ row, reason: outcome.reason });
          return;
        case 'outage':
        case 'no_stream':
        case undefined:
          cycle.outage = true;
          return;
        default: {
          const unknown: never = outcome;
          throw new Error(`unknown publish outcome ${String(unknown)}`);
        }
      }
    });
    if (publishedIds.length > 0) {
      // clock_timestamp(): when JetStream acked, not when this claim's transaction began.
      await client.query(`UPDATE ${table} SET status = 'published', published_at = clock_timestamp() WHERE id = ANY($1::uuid[])`, [
        publishedIds,
      ]);
      cycle.published = publishedIds.length;
    }
    if (rejected.length > 0) {
      const status = outboxStatusType(schema);
      const { rows: marked } = await client.query<{ id: string; status: string; attempts: number }>(
        `UPDATE ${table} AS o
            SET attempts = o.attempts + 1,
                last_error = f.error,
                status = CASE WHEN o.attempts + 1 >= $4 THEN 'failed'::${status} ELSE 'pending'::${status} END,
                next_attempt_at = now() + f.delay_ms * interval '1 millisecond'
           FROM unnest($1::uuid[], $2::text[], $3::float8[]) AS f(id, error, delay_ms)
          WHERE o.id = f.id
          RETURNING o.id, o.status::text AS status, o.attempts`,
        [
          rejected.map(({ row }) => row.id),
          rejected.map(({ reason }) => reason.slice(0, LAST_ERROR_MAX_CHARS)),
          rejected.map(({ row }) => this.retryDelayMs(row.attempts + 1)),
          maxAttempts,
        ],
      );
      cycle.rejected = rejected.length;
      cycle.failed = marked.filter((row) => row.status === 'failed').length;
      const byId = new Map(marked.map((row) => [row.id, row]));
      for (const { row, reason } of rejected) {
        const after = byId.get(row.id);
        const fields = { schema, eventId: row.id, type: row.type, subject: row.subject, attempts: after?.attempts, reason };
        if (after?.status === 'failed') this.options.logger.error(fields, 'outbox event failed: JetStream kept refusing it');
        else this.options.logger.warn(fields, 'outbox event refused by JetStream; will retry');
      }
    }
    return cycle;
  }

  private afterCommit(cycle: RelayCycle): void {
    const labels = { schema: this.options.schema };
    if (cycle.published > 0) this.counters.published?.inc(labels, cycle.published);
    if (cycle.duplicates > 0) this.counters.duplicates?.inc(labels, cycle.duplicates);
    if (cycle.rejected > 0) this.counters.rejected?.inc(labels, cycle.rejected);
    if (cycle.outage) this.pause('jetstream did not answer a publish');
  }

  private pause(reason: string): void {
    if (this.paused) return;
    this.paused = true;
    this.options.logger.warn({ schema: this.options.schema, reason }, 'outbox relay paused: broker unavailable, nothing counted');
  }

  private resume(): void {
    this.paused = false;
    this.options.logger.info({ schema: this.options.schema }, 'outbox relay resumed');
  }

  /** JetStream answers an account info request now (a cheap round trip through the API). */
  private async brokerAnswers(): Promise<boolean> {
    if (!this.connected || this.options.nc.isClosed()) return false;
    try {
      this.jsm ??= await jetstreamManager(this.options.nc, { timeout: this.options.publishTimeoutMs, checkAPI: false });
      await this.jsm.getAccountInfo();
      return true;
    } catch {
      return false;
    }
  }

  private watchConnection(): void {
    const feed = this.options.nc.status();
    this.statusFeed = feed;
    void (async () => {
      for await (const status of feed) {
        if (status.type === 'disconnect' || status.type === 'close') {
          this.connected = false;
        } else if (status.type === 'reconnect') {
          this.connected = true;
          this.doorbell.ring();
        }
      }
    })();
  }

  /** LISTEN on a connection of its own; if it breaks, the poll carries on and it listens again. */
  private async listen(): Promise<void> {
    if (!this.running) return;
    const client = new pg.Client(this.options.pool.options);
    const relisten = (error?: Error) => {
      if (this.listener !== client) return;
      this.listener = undefined;
      if (error) this.options.logger.warn({ schema: this.options.schema, err: error }, 'outbox relay lost its LISTEN connection');
      void client.end().catch(() => undefined);
      if (this.running) this.relistenTimer = setTimeout(() => void this.listen(), RELISTEN_AFTER_MS);
    };
    client.on('notification', () => this.doorbell.ring());
    client.on('error', (error) => relisten(error));
    client.on('end', () => relisten());
    this.listener = client;
    try {
      await client.connect();
      await client.query(`LISTEN "${outboxChannel(this.options.schema)}"`);
      // Rows committed while nobody listened are caught up at once.
      this.doorbell.ring();
    } catch (error) {
      relisten(error instanceof Error ? error : new Error(String(error)));
    }
  }

  private nextPollDelay(): number {
    const { pollIntervalMs, pollJitterMs, random } = this.options;
    return Math.max(0, pollIntervalMs + (random() * 2 - 1) * pollJitterMs);
  }

  private retryDelayMs(attempt: number): number {
    const { retryBaseMs, retryMaxMs } = this.options;
    return Math.min(retryMaxMs, retryBaseMs * 2 ** Math.max(0, attempt - 1));
  }
}

/** The envelope as published: the outbox row's columns under the contract's names. */
export function outboxEnvelopeOf(row: OutboxRow): EventEnvelope {
  return {
    id: row.id,
    type: row.type,
    version: row.version,
    occurredAt: row.occurred_at.toISOString(),
    correlationId: row.correlation_id,
    traceparent: row.traceparent,
    actor: row.actor,
    organizationId: row.organization_id,
    departmentId: row.department_id,
    projectId: row.project_id,
    registryVersions: row.registry_versions,
    aggregateType: row.aggregate_type,
    aggregateId: row.aggregate_id,
    aggregateVersion: row.aggregate_version,
    payload: row.payload,
  };
}

function stopFeed(feed: AsyncIterable<Status> | undefined): void {
  const stoppable = feed as { stop?: () => void } | undefined;
  stoppable?.stop?.();
}

/** Wakes the loop early (NOTIFY, reconnect, stop); a ring while it is busy is kept for the next wait. */
class Doorbell {
  private rung = false;
  private wake: (() => void) | undefined;

  ring(): void {
    this.rung = true;
    this.wake?.();
  }

  async wait(ms: number): Promise<void> {
    if (this.rung) {
      this.rung = false;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.wake = resolve;
      timer = setTimeout(resolve, ms);
    });
    clearTimeout(timer);
    this.wake = undefined;
    this.rung = false;
  }
}
