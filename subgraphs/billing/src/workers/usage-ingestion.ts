import type pg from 'pg';
import { systemClock, type Clock } from '@aifactory/clock';
import { prefixSubject, streamDeclarations, USAGE_PRODUCTS, usageSubject, type UsageProduct } from '@aifactory/contracts';
import { isAppError } from '@aifactory/errors';
import { backoffDelayMs, ensureConsumer, inBatches, type ConsumerDeclaration } from '@aifactory/event-consumers';
import { ensureStreams } from '@aifactory/events';
import type { Logger } from '@aifactory/logging';
import type { Counter, Histogram, ServiceMetrics } from '@aifactory/telemetry';
import { jetstream, jetstreamManager, type Consumer, type ConsumerMessages, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { inTransaction } from '../data/transactions.js';
import { UsageIngestStore } from '../data/usage-ingest-store.js';
import { UsageIngestion, type UsageDelivery, type UsageOutcome, type UsagePolicy } from '../domain/usage-ingestion.js';
import type { RatingQueue } from './rating-queue.js';

export interface UsageIngestionOptions {
  nc: NatsConnection;
  subjectPrefix: string;
  /** billing's app pool: usage tables and the consumer's dead_letters live in billing's schema. */
  pool: pg.Pool;
  schema: string;
  logger: Logger;
  metrics: ServiceMetrics;
  policy: UsagePolicy;
  /** Where ingested batches go to be rated (the rating queue's job per batch). */
  rating: Pick<RatingQueue, 'enqueue'>;
  /** Events per ingestion transaction (BILLING_USAGE_BATCH_SIZE). */
  batchSize: number;
  /** How long usage of an unknown organization or project is put back before it is rejected (BILLING_USAGE_SCOPE_WAIT_MS). */
  scopeWaitMs: number;
  /** JetStream deliveries of a message before it is given up on; `MAX_DELIVER` unless a test needs to reach it quickly. */
  maxDeliver?: number;
  clock?: Clock;
}

/** The durable consumer of each product's usage. */
export const USAGE_CONSUMERS: Readonly<Record<UsageProduct, string>> = {
  gpuaas: 'billing-usage-gpuaas',
  appplatform: 'billing-usage-appplatform',
  tokenfactory: 'billing-usage-tokenfactory',
};

/** A failed transaction is retried after these delays; the last repeats. */
const FAILURE_BACKOFF_MS: readonly number[] = [1_000, 2_000, 5_000, 10_000, 30_000];
/**
 * JetStream's delivery limit. A message whose transaction keeps failing is
 * dead-lettered on the delivery before the last, so a dead letter that
 * cannot be written either still has one delivery left to be written on.
 * Unknown-scope waits spend deliveries too (about 15 for the default
 * 5-minute wait), and a database outage should be outlasted: at the 30 s
 * step this is about eight hours.
 */
const MAX_DELIVER = 1_000;
/**
 * Messages put back while their scope is unknown stay unacknowledged until
 * redelivered; JetStream's default limit (1,000) would let a burst of them
 * stall the stream, so the limit is raised well past a batch in flight.
 */
const MAX_ACK_PENDING = 20_000;
const ACK_WAIT_MS = 60_000;
/**
 * Batches ingested at once per stream. Usage needs no order between batches
 * (ids make it idempotent; rating pairs an interval's events itself), and two
 * in flight keep Node and Postgres busy at the same time.
 */
const BATCHES_IN_FLIGHT = 2;
const RESTART_DELAY_MS = 1_000;
const LAG_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300];

type IngestMetricOutcome = UsageOutcome['outcome'] | 'retried';

interface UsageMetrics {
  ingested: Counter<'product' | 'outcome'>;
  lag: Histogram<'product'>;
}

/**
 * billing's intake of usage: one durable JetStream consumer per product
 * stream (`billing-usage-<product>`, filter `<product>.usage.>`). Messages are
 * taken in batches of what is at hand (up to `batchSize`), each batch
 * ingested in one transaction (domain/usage-ingestion.ts) and acknowledged
 * only after it committed; then its accepted usage is handed to rating.
 * A batch whose transaction fails is retried one message per transaction, so
 * one bad message cannot hold back the rest; a message that keeps failing is
 * put back with backoff, and dead-lettered on its next-to-last delivery.
 */
export async function startUsageIngestion(options: UsageIngestionOptions): Promise<{ stop(): Promise<void> }> {
  const { nc, subjectPrefix } = options;
  const jsm = await jetstreamManager(nc);
  const metrics: UsageMetrics = {
    ingested: options.metrics.counter(
      'aif_billing_usage_ingested_total',
      'Usage messages settled by ingestion, by product and outcome (accepted, rejected, duplicate, conflict, waiting, summary, dead_lettered, retried).',
      ['product', 'outcome'],
    ),
    lag: options.metrics.histogram(
      'aif_billing_usage_ingest_lag_seconds',
      'Seconds from JetStream storing a usage event to billing committing its row (accepted or rejected).',
      ['product'],
      LAG_BUCKETS,
    ),
  };
  const started: UsageStreamConsumer[] = [];
  try {
    for (const product of USAGE_PRODUCTS) {
      const { stream, declaration } = await declareConsumer(jsm, product, subjectPrefix, options.maxDeliver ?? MAX_DELIVER);
      const consumer = new UsageStreamConsumer(options, product, stream, declaration, metrics);
      await consumer.start();
      started.push(consumer);
    }
  } catch (error) {
    await Promise.all(started.map((consumer) => consumer.stop()));
    throw error;
  }
  return { stop: async () => void (await Promise.all(started.map((consumer) => consumer.stop()))) };
}

/** Ensures the product's stream and its usage consumer; returns the stream's name and the consumer's declaration. */
async function declareConsumer(
  jsm: JetStreamManager,
  product: UsageProduct,
  subjectPrefix: string,
  maxDeliver: number,
): Promise<{ stream: string; declaration: ConsumerDeclaration }> {
  const family = prefixSubject(`${product}.>`, subjectPrefix);
  const stream = streamDeclarations({ subjectPrefix }).find((declaration) => declaration.subjects.includes(family));
  if (stream === undefined) throw new RangeError(`no stream declared for ${family}`);
  await ensureStreams(jsm, [stream]);
  const declaration: ConsumerDeclaration = {
    durableName: USAGE_CONSUMERS[product],
    filterSubjects: [prefixSubject(usageSubject(product, '>'), subjectPrefix)],
    ackWaitMs: ACK_WAIT_MS,
    maxDeliver,
    backoffMs: FAILURE_BACKOFF_MS,
  };
  const { info } = await ensureConsumer(jsm, stream.name, declaration);
  if (info.config.max_ack_pending !== MAX_ACK_PENDING) {
    await jsm.consumers.update(stream.name, declaration.durableName, { max_ack_pending: MAX_ACK_PENDING });
  }
  return { stream: stream.name, declaration };
}

class UsageStreamConsumer {
  private readonly ingestion: UsageIngestion;
  private readonly store: UsageIngestStore;
  private readonly consumerName: string;
  private readonly log: Logger;
  private readonly batchSize: number;
  private stopping = false;
  private messages: ConsumerMessages | undefined;
  private wake: (() => void) | undefined;
  private reading: Promise<void> | undefined;

  constructor(
    private readonly options: UsageIngestionOptions,
    private readonly product: UsageProduct,
    private readonly stream: string,
    private readonly declaration: ConsumerDeclaration,
    private readonly metrics: UsageMetrics,
  ) {
    this.consumerName = declaration.durableName;
    this.store = new UsageIngestStore(options.schema);
    this.ingestion = new UsageIngestion(options.pool, this.store, {
      consumer: this.consumerName,
      subjectPrefix: options.subjectPrefix,
      policy: options.policy,
      scopeWaitMs: options.scopeWaitMs,
      clock: options.clock ?? systemClock,
    });
    this.log = options.logger.child({ stream, consumer: this.consumerName });
    this.batchSize = Math.max(1, Math.floor(options.batchSize));
  }

  async start(): Promise<void> {
    const consumer = await jetstream(this.options.nc).consumers.get(this.stream, this.consumerName);
    this.reading = this.readUntilStopped(consumer);
  }

  private async readUntilStopped(consumer: Consumer): Promise<void> {
    while (!this.stopping) {
      try {
        this.messages = await consumer.consume({ max_messages: Math.max((BATCHES_IN_FLIGHT + 1) * this.batchSize, 10) });
        if (this.stopping) {
          void this.messages.close();
          break;
        }
        await this.settleAll(this.messages);
      } catch (error) {
        if (this.stopping) break;
        this.log.error({ err: error }, 'usage ingestion stopped reading; restarting');
      }
      if (!this.stopping) await this.pause(RESTART_DELAY_MS);
    }
  }

  /** Settles batches as they come, `BATCHES_IN_FLIGHT` at a time: one is decoded while another's transaction runs in Postgres. */
  private async settleAll(messages: ConsumerMessages): Promise<void> {
    const settling = new Set<Promise<void>>();
    try {
      for await (const batch of inBatches(messages, this.batchSize)) {
        // Left unacked, messages taken after stop() are redelivered to the next instance.
        if (this.stopping) break;
        const settled: Promise<void> = this.settle(batch)
          // settle() answers every message itself; what escapes it is a defect (a closed connection on ack), logged, never unhandled.
          .catch((error: unknown) => this.log.error({ err: error, messages: batch.length }, 'usage batch could not be settled'))
          .finally(() => settling.delete(settled));
        settling.add(settled);
        if (settling.size >= BATCHES_IN_FLIGHT) await Promise.race(settling);
      }
    } finally {
      await Promise.all(settling);
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    // As in runConsumer: close() resolves only once the buffered messages are read, so it is not awaited.
    void this.messages?.close();
    await this.reading;
  }

  /** Never throws: every message ends acknowledged, put back or dead-lettered. */
  private async settle(messages: readonly JsMsg[]): Promise<void> {
    let result;
    try {
      result = await this.ingestion.ingest(messages.map(deliveryOf));
    } catch (error) {
      if (messages.length === 1) {
        await this.settleFailure(messages[0]!, error);
        return;
      }
      this.log.warn({ err: error, messages: messages.length }, 'usage batch failed; ingesting its messages one by one');
      for (const message of messages) await this.settle([message]);
      return;
    }
    // Only now that the rows are committed: a crash before this line means a redelivery, never a loss.
    const now = (this.options.clock ?? systemClock).nowMs();
    messages.forEach((message, i) => this.answer(message, result.outcomes[i]!, now));
    if (result.batchId !== null) {
      try {
        await this.options.rating.enqueue(result.batchId);
      } catch (error) {
        // The batch stays unrated in usage_batches; the unrated-batch sweeper enqueues it again.
        this.log.warn({ err: error, batchId: result.batchId }, 'usage batch ingested but not enqueued for rating');
      }
    }
  }

  private answer(message: JsMsg, outcome: UsageOutcome, nowMs: number): void {
    switch (outcome.outcome) {
      case 'accepted':
      case 'rejected':
        this.metrics.lag.observe({ product: this.product }, Math.max(0, nowMs - publishedMs(message)) / 1000);
        message.ack();
        break;
      case 'duplicate':
      case 'conflict':
      case 'summary':
        message.ack();
        break;
      case 'waiting':
        message.nak(outcome.retryInMs);
        break;
      case 'dead_lettered':
        // No reason on the TERM: nats-server 2.9 does not read one; dead_letters has it.
        message.term();
        this.log.warn({ ...identify(message), reason: outcome.reason }, 'usage message moved to dead letters');
        break;
      default: {
        const unknown: never = outcome;
        throw new TypeError(`unknown outcome ${JSON.stringify(unknown)}`);
      }
    }
    this.count(outcome.outcome);
  }

  private async settleFailure(message: JsMsg, error: unknown): Promise<void> {
    const deliveries = message.info.deliveryCount;
    const { maxDeliver } = this.declaration;
    const delayMs = backoffDelayMs(this.declaration, deliveries);
    if (deliveries < maxDeliver - 1) {
      message.nak(delayMs);
      this.count('retried');
      this.log.warn({ ...identify(message), err: error, delayMs }, 'usage message failed; retrying after backoff');
      return;
    }
    try {
      await inTransaction(this.options.pool, (tx) =>
        this.store.recordDeadLetters(tx, this.consumerName, [
          { eventId: deliveryOf(message).fallbackId, subject: message.subject, envelope: message.string(), reason: 'handler_failed', detail: describe(error), deliveries },
        ]),
      );
    } catch (recordError) {
      if (deliveries < maxDeliver) {
        // The delivery kept in hand for this: the message comes once more, to be ingested or dead-lettered then.
        message.nak(delayMs);
        this.count('retried');
        this.log.error({ ...identify(message), err: recordError, cause: describe(error) }, 'usage message could not be dead-lettered; retrying it once more');
        return;
      }
      // JetStream will not deliver it again (max_deliver): say so loudly, the stream still holds it.
      this.log.error({ ...identify(message), err: recordError, cause: describe(error) }, 'usage message failed on its last delivery and could not be dead-lettered');
      message.nak();
      return;
    }
    message.term();
    this.count('dead_lettered');
    this.log.error({ ...identify(message), err: error }, 'usage message moved to dead letters after failing on every delivery');
  }

  private count(outcome: IngestMetricOutcome): void {
    this.metrics.ingested.inc({ product: this.product, outcome });
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

function deliveryOf(message: JsMsg): UsageDelivery {
  return {
    subject: message.subject,
    body: message.string(),
    publishedAt: new Date(publishedMs(message)),
    deliveries: message.info.deliveryCount,
    fallbackId: message.headers?.get('Nats-Msg-Id') || `${message.info.stream}:${message.seq}`,
  };
}

function publishedMs(message: JsMsg): number {
  return Number(message.timestampNanos / 1_000_000n);
}

function identify(message: JsMsg): { subject: string; streamSequence: number; deliveries: number } {
  return { subject: message.subject, streamSequence: message.seq, deliveries: message.info.deliveryCount };
}

function describe(error: unknown): string {
  const text = isAppError(error) ? `${error.code}: ${error.message}` : error instanceof Error ? error.message : String(error);
  return text.slice(0, 2_000);
}
