import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { EVENT_HEADERS, organizationUpdatedV1, prefixSubject, streamDeclarations, type EventEnvelope } from '@aifactory/contracts';
import { ensureStreams, OutboxRelay, writeOutboxEvent, type OutboxEventInput } from '@aifactory/events';
import type { Logger } from '@aifactory/logging';
import { createTestDatabase, deleteEventStreams, TEST_NATS_URL, uniqueEventSubjectPrefix, type TestDatabase } from '@aifactory/testing';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import pg from 'pg';
import { percentile } from './load.js';
import { dropWhenIdle, progress, type Teardown } from './teardown.js';

const SCHEMA = 'iam';
/** OutboxRelay's default batch: each relay has at most this many publishes in flight. */
const RELAY_BATCH = 50;
const RELAYS = 2;
/** The raw baseline's window: as many publishes in flight as the two relays can have together. */
export const RAW_WINDOW = RELAY_BATCH * RELAYS;
/** The header JetStream dedupes on; the relay sets it to the event id. */
const MSG_ID_HEADER = 'Nats-Msg-Id';

export interface RelayBenchOptions {
  events: number;
  /** Concurrent writer transactions, each committing one event. */
  writers: number;
  /** Each path runs once per round; the table sums the rounds. */
  rounds: number;
  logger: Logger;
  /** Receives what this part creates, to undo at its end or on Ctrl-C. */
  teardown: Teardown;
}

/** One way of getting N events into the stream, timed from its first commit (or first publish) to its last ack. */
export interface PublishPath {
  label: string;
  events: number;
  seconds: number;
  /** Per event: ack latency for raw publishes, commit-to-receipt for the relay; empty where it means nothing. */
  latenciesMs: number[];
  /** Receipts beyond one per event (a row published twice). */
  duplicates: number;
  missing: number;
}

export interface RelayBenchResult {
  rawSequential: PublishPath;
  rawWindowed: PublishPath;
  relayLive: PublishPath;
  relayBacklog: PublishPath;
  /** Commits per second of the writers while the relays ran (the live phase). */
  writerLivePerSecond: number;
  /** Commits per second of the writers alone, with no relay running (the backlog phase's writes). */
  writerOnlyPerSecond: number;
  payloadBytes: number;
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across the callbacks of this process. */
const now = () => performance.timeOrigin + performance.now();

function organizationEvent(): OutboxEventInput {
  const id = randomUUID();
  return {
    type: organizationUpdatedV1.type,
    version: 1,
    aggregateId: id,
    aggregateVersion: 2,
    actor: { type: 'user', id: 'bench-writer' },
    organizationId: id,
    correlationId: `bench-${randomUUID()}`,
    traceparent: null,
    payload: { id, slug: `org-${id.slice(0, 8)}`, name: 'Bench Organization', billingCurrency: 'EUR', status: 'active' },
  };
}

/** The envelope the relay would publish for such a row, so the raw baseline sends the same bytes. */
function envelopeOf(input: OutboxEventInput): EventEnvelope {
  return {
    id: randomUUID(),
    type: input.type,
    version: input.version,
    occurredAt: new Date().toISOString(),
    correlationId: input.correlationId ?? 'bench',
    traceparent: null,
    actor: input.actor,
    organizationId: input.organizationId ?? null,
    departmentId: null,
    projectId: null,
    registryVersions: {},
    aggregateType: organizationUpdatedV1.aggregateType,
    aggregateId: input.aggregateId,
    aggregateVersion: input.aggregateVersion,
    payload: input.payload as Record<string, unknown>,
  };
}

/** Raw JetStream publishes with msg ids, `window` in flight at a time (1: each awaited before the next). */
async function rawPublish(js: JetStreamClient, subject: string, events: number, window: number, label: string): Promise<PublishPath> {
  const latenciesMs: number[] = [];
  let next = 0;
  let duplicates = 0;
  const worker = async () => {
    while (next < events) {
      next += 1;
      const envelope = envelopeOf(organizationEvent());
      const h = headers();
      h.set(EVENT_HEADERS.correlationId, envelope.correlationId);
      const t0 = performance.now();
      const ack = await js.publish(subject, JSON.stringify(envelope), { msgID: envelope.id, headers: h });
      latenciesMs.push(performance.now() - t0);
      if (ack.duplicate) duplicates += 1;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: window }, worker));
  return { label, events, seconds: (performance.now() - started) / 1000, latenciesMs, duplicates, missing: 0 };
}

/** Records when each event id first reaches a core subscriber of the stream's subjects: JetStream has stored it by then. */
class Receipts {
  readonly at = new Map<string, number>();
  duplicates = 0;
  private readonly subscription: Subscription;

  constructor(nc: NatsConnection, subject: string) {
    this.subscription = nc.subscribe(subject, {
      callback: (error, message) => {
        if (error) return;
        const id = message.headers?.get(MSG_ID_HEADER);
        if (!id) return;
        if (this.at.has(id)) this.duplicates += 1;
        else this.at.set(id, now());
      },
    });
  }

  async until(ids: readonly string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (ids.some((id) => !this.at.has(id)) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  stop(): void {
    this.subscription.unsubscribe();
  }
}

/** `writers` concurrent loops, each committing one event per transaction; returns each event's commit time. */
async function writeEvents(pool: pg.Pool, events: number, writers: number, subjectPrefix: string): Promise<Map<string, number>> {
  const committedAt = new Map<string, number>();
  let next = 0;
  const writer = async () => {
    while (next < events) {
      next += 1;
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const event = await writeOutboxEvent(client, organizationEvent(), { schema: SCHEMA, subjectPrefix });
        await client.query('COMMIT');
        committedAt.set(event.id, now());
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    }
  };
  await Promise.all(Array.from({ length: writers }, writer));
  return committedAt;
}

interface Relays {
  relays: OutboxRelay[];
  pools: pg.Pool[];
  connections: NatsConnection[];
}

/** Two relays on one schema, each with its own pool and NATS connection, as two replicas would run. */
async function startRelays(db: TestDatabase, subjectPrefix: string, logger: Logger): Promise<Relays> {
  const started: Relays = { relays: [], pools: [], connections: [] };
  for (let index = 0; index < RELAYS; index += 1) {
    const pool = new pg.Pool({ connectionString: db.appUrl(SCHEMA), max: 2 });
    // An idle connection cut by the server (the database dropped on Ctrl-C) must not crash the run.
    pool.on('error', () => undefined);
    const nc = await connect({ servers: TEST_NATS_URL, name: `aif-bench-relay-${index}` });
    const relay = new OutboxRelay({ pool, schema: SCHEMA, nc, logger, subjectPrefix, batchSize: RELAY_BATCH });
    started.pools.push(pool);
    started.connections.push(nc);
    started.relays.push(relay);
  }
  await Promise.all(started.relays.map((relay) => relay.start()));
  return started;
}

async function stopRelays(running: Relays): Promise<void> {
  await Promise.all(running.relays.map((relay) => relay.stop()));
  await Promise.all(running.pools.map((pool) => pool.end()));
  await Promise.all(running.connections.map((nc) => nc.close()));
}

function relayPath(label: string, committedAt: Map<string, number>, receipts: Receipts, startedAt: number, withLatency: boolean, duplicates: number): PublishPath {
  const ids = [...committedAt.keys()];
  const received = ids.filter((id) => receipts.at.has(id));
  const lastAck = received.reduce((latest, id) => Math.max(latest, receipts.at.get(id)!), startedAt);
  return {
    label,
    events: ids.length,
    seconds: (lastAck - startedAt) / 1000,
    latenciesMs: withLatency ? received.map((id) => receipts.at.get(id)! - committedAt.get(id)!) : [],
    duplicates,
    missing: ids.length - received.length,
  };
}

/** Rounds of one path as one: events and seconds summed, latencies pooled. */
function addPath(total: PublishPath | undefined, round: PublishPath): PublishPath {
  if (!total) return { ...round, latenciesMs: [...round.latenciesMs] };
  for (const latency of round.latenciesMs) total.latenciesMs.push(latency);
  return {
    ...total,
    events: total.events + round.events,
    seconds: total.seconds + round.seconds,
    duplicates: total.duplicates + round.duplicates,
    missing: total.missing + round.missing,
  };
}

const span = (times: Iterable<number>) => {
  let first = Infinity;
  let last = -Infinity;
  for (const at of times) {
    first = Math.min(first, at);
    last = Math.max(last, at);
  }
  return { first, seconds: (last - first) / 1000 };
};

/**
 * Part 1 of `npm run bench -- events`: the same number of events put into a
 * private-prefix stream on the shared NATS four ways in one run: raw
 * publishes awaited one by one, raw publishes RAW_WINDOW in flight, two
 * relays while writers commit, and two relays draining a backlog already
 * committed; in `rounds` rounds, the order rotated each round, the outbox
 * emptied between them. The database is private and dropped, the stream
 * carries a prefix of this run and is deleted.
 */
export async function measureRelayThroughput(options: RelayBenchOptions): Promise<RelayBenchResult> {
  const { events, writers, rounds, logger, teardown } = options;
  const subjectPrefix = uniqueEventSubjectPrefix();
  const subject = prefixSubject(organizationUpdatedV1.subject, subjectPrefix);
  const iamStream = streamDeclarations({ subjectPrefix }).filter((stream) => stream.name === `${subjectPrefix.toUpperCase()}_PLATFORM_IAM`);
  let relays: Relays | undefined;
  try {
    progress('relay: creating a private database');
    teardown.add('delete the streams of this run', () => deleteEventStreams(subjectPrefix, TEST_NATS_URL));
    const db = await createTestDatabase({ subgraphs: [SCHEMA] });
    teardown.add('drop the private database', () => dropWhenIdle(db));
    const admin = await db.admin();
    const nc = await connect({ servers: TEST_NATS_URL, name: 'aif-bench-events' });
    teardown.add('close the NATS connection', () => nc.close());
    await ensureStreams(await jetstreamManager(nc), iamStream);
    const js = jetstream(nc);
    const pool = new pg.Pool({ connectionString: db.appUrl(SCHEMA), max: writers });
    pool.on('error', () => undefined);
    teardown.add('close the writers\' pool', () => pool.end());
    teardown.add('stop the relays', async () => {
      if (relays) await stopRelays(relays);
    });
    // Every writer connection opened before any clock starts.
    const opened = await Promise.all(Array.from({ length: writers }, () => pool.connect()));
    for (const client of opened) client.release();
    const seen = new Receipts(nc, `${subjectPrefix}.>`);
    teardown.add('stop the receipt subscription', async () => seen.stop());
    await nc.flush();
    // A short warm-up, so no path pays for the stream's first file or the connection's first round trips.
    await rawPublish(js, subject, 200, 10, 'warm-up');

    const totals: Partial<Record<'rawSequential' | 'rawWindowed' | 'relayLive' | 'relayBacklog', PublishPath>> = {};
    let liveWrites = { events: 0, seconds: 0 };
    let aloneWrites = { events: 0, seconds: 0 };
    const phases: { name: keyof typeof totals; run: () => Promise<PublishPath> }[] = [
      { name: 'rawSequential', run: () => rawPublish(js, subject, events, 1, 'raw JetStream publish, each awaited') },
      { name: 'rawWindowed', run: () => rawPublish(js, subject, events, RAW_WINDOW, `raw JetStream publish, ${RAW_WINDOW} in flight`) },
      {
        name: 'relayLive',
        run: async () => {
          const duplicatesBefore = seen.duplicates;
          relays = await startRelays(db, subjectPrefix, logger);
          const committed = await writeEvents(pool, events, writers, subjectPrefix);
          await seen.until([...committed.keys()], 60_000 + events * 10);
          await stopRelays(relays);
          relays = undefined;
          const commits = span(committed.values());
          liveWrites = { events: liveWrites.events + events, seconds: liveWrites.seconds + commits.seconds };
          return relayPath(`${RELAYS} relays, ${writers} writers committing meanwhile`, committed, seen, commits.first, true, seen.duplicates - duplicatesBefore);
        },
      },
      {
        name: 'relayBacklog',
        run: async () => {
          const duplicatesBefore = seen.duplicates;
          const writesStarted = now();
          const committed = await writeEvents(pool, events, writers, subjectPrefix);
          aloneWrites = { events: aloneWrites.events + events, seconds: aloneWrites.seconds + (now() - writesStarted) / 1000 };
          const drainStarted = now();
          relays = await startRelays(db, subjectPrefix, logger);
          await seen.until([...committed.keys()], 60_000 + events * 10);
          await stopRelays(relays);
          relays = undefined;
          return relayPath(`${RELAYS} relays draining ${events} committed rows`, committed, seen, drainStarted, false, seen.duplicates - duplicatesBefore);
        },
      },
    ];
    for (let round = 0; round < rounds; round += 1) {
      progress(`relay: round ${round + 1} of ${rounds}`);
      // Rotated each round, so no path always runs first or always follows the same one.
      for (const phase of phases.map((_, index) => phases[(index + round) % phases.length]!)) {
        totals[phase.name] = addPath(totals[phase.name], await phase.run());
        if (phase.name.startsWith('relay')) {
          const { rows } = await admin.query<{ n: number }>(`SELECT count(*)::int AS n FROM iam.outbox_events WHERE status <> 'published'`);
          if ((rows[0]?.n ?? 0) > 0) throw new Error(`${rows[0]?.n} outbox rows were left unpublished`);
          // Every round's relays find the same empty table.
          await admin.query('DELETE FROM iam.outbox_events');
        }
      }
    }

    return {
      rawSequential: totals.rawSequential!,
      rawWindowed: totals.rawWindowed!,
      relayLive: totals.relayLive!,
      relayBacklog: totals.relayBacklog!,
      writerLivePerSecond: liveWrites.events / liveWrites.seconds,
      writerOnlyPerSecond: aloneWrites.events / aloneWrites.seconds,
      payloadBytes: Buffer.byteLength(JSON.stringify(envelopeOf(organizationEvent()))),
    };
  } finally {
    await teardown.run();
    progress('relay: done');
  }
}

const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '-');

export function printRelayThroughput(result: RelayBenchResult, options: RelayBenchOptions): void {
  const out = process.stdout;
  const base = result.rawSequential.events / result.rawSequential.seconds;
  const windowed = result.rawWindowed.events / result.rawWindowed.seconds;
  out.write(
    `\n1. Outbox relay throughput: ${options.rounds} rounds of ${options.events} events of ${result.payloadBytes} B into a private-prefix stream on ${TEST_NATS_URL}, ` +
      `file storage, msg id = event id; each outbox row written by its own transaction, ${options.writers} at a time. ` +
      `The relays publish a claimed batch of ${RELAY_BATCH} concurrently, so at most ${RAW_WINDOW} are in flight. ` +
      'Relay rows run from the first commit (live) or the relays\' start (backlog) to the last event seen by a core subscriber of the stream\'s subjects (= stored and acked); ' +
      'latency there is the writer\'s commit returning to that receipt. Each path ran once per round, the order rotated; rows sum the rounds.\n\n',
  );
  out.write(`| path | events | s | events/s | / raw awaited | / raw ${RAW_WINDOW} in flight | p50 ms | p99 ms | dup | missing |\n|---|---|---|---|---|---|---|---|---|---|\n`);
  for (const path of [result.rawSequential, result.rawWindowed, result.relayLive, result.relayBacklog]) {
    const rate = path.events / path.seconds;
    const sorted = [...path.latenciesMs].sort((a, b) => a - b);
    out.write(
      `| ${path.label} | ${path.events} | ${fmt(path.seconds, 2)} | ${fmt(rate, 0)} | ${fmt(rate / base, 2)} | ${fmt(rate / windowed, 2)} | ` +
        `${fmt(percentile(sorted, 50), 2)} | ${fmt(percentile(sorted, 99), 2)} | ${path.duplicates} | ${path.missing} |\n`,
    );
  }
  out.write(
    `\nWriters: ${fmt(result.writerLivePerSecond, 0)} commits/s while the relays ran (the live row cannot beat it), ${fmt(result.writerOnlyPerSecond, 0)} commits/s alone (the backlog's writes). ` +
      'Writers, relays and the receipt subscriber share this process\'s event loop and the machine\'s cores with Postgres and NATS.\n',
  );
}
