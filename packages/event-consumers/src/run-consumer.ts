import { isAppError } from '@aifactory/errors';
import type { Logger } from '@aifactory/logging';
import type { ServiceMetrics } from '@aifactory/telemetry';
import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import type pg from 'pg';
import { backoffDelayMs, type ConsumerDeclaration } from './consumer-declaration.js';
import { registerConsumerMetrics, type ConsumerMetrics } from './consumer-metrics.js';
import {
  countDeadLetters,
  DEAD_LETTER_REASONS,
  listDeadLetters,
  recordDeadLetters,
  replayDeadLetter,
  type DeadLetter,
  type NewDeadLetter,
  type ReplayResult,
} from './dead-letters.js';
import {
  applyEvents,
  inTransaction,
  readEvent,
  type DecodeEvent,
  type EventApplication,
  type HandleEvents,
  type KindOf,
} from './event-application.js';

export interface RunConsumerOptions<P> {
  js: JetStreamClient;
  pool: pg.Pool;
  /** The consumer's own schema: its effect and its consumer tables (`CONSUMER_TABLES_SQL`). */
  schema: string;
  stream: string;
  /** The declaration `ensureConsumer` created the durable consumer from; its retry policy is applied here. */
  consumer: ConsumerDeclaration;
  decode: DecodeEvent<P>;
  kindOf: KindOf;
  handle: HandleEvents<P>;
  /** Messages settled per Postgres transaction (default 1). */
  batchSize?: number;
  logger: Logger;
  metrics: ServiceMetrics;
}

export interface RunningConsumer {
  /** Stops fetching, waits for the batch in hand to settle; unsettled messages are redelivered later. */
  stop(): Promise<void>;
  listDeadLetters(options?: { limit?: number }): Promise<DeadLetter[]>;
  replayDeadLetter(eventId: string): Promise<ReplayResult>;
}

/** What became of one message once its transaction committed. */
type Verdict =
  | { action: 'ack'; outcome: 'applied' | 'skipped' | 'duplicate' }
  | { action: 'retry'; reason: string }
  | { action: 'dead'; reason: string };

const RESTART_DELAY_MS = 1_000;
const MAX_DETAIL_CHARS = 2_000;

/**
 * Runs a durable consumer (created beforehand with `ensureConsumer`) until
 * `stop()`. Every message goes through one Postgres transaction (or a batch of
 * up to `batchSize` through one) that checks idempotency by event id and the
 * version rule, runs `handle` and records the event as processed; the message
 * is acked only after that commit. A failure naks with the declared backoff;
 * on the last delivery, or at once for an event that can never be applied
 * (unknown type or version, invalid payload), the event goes to dead letters.
 */
export async function runConsumer<P>(options: RunConsumerOptions<P>): Promise<RunningConsumer> {
  const { js, pool, schema, stream, logger } = options;
  const declaration = options.consumer;
  const name = declaration.durableName;
  const batchSize = Math.max(1, Math.floor(options.batchSize ?? 1));
  const application: EventApplication<P> = {
    pool,
    schema,
    consumer: name,
    decode: options.decode,
    kindOf: options.kindOf,
    handle: options.handle,
  };
  const log = logger.child({ stream, consumer: name });

  const jsConsumer = await js.consumers.get(stream, name);
  const metrics = registerConsumerMetrics(options.metrics, {
    stream,
    consumer: name,
    pending: async () => (await jsConsumer.info()).num_pending,
    deadLetters: () => countDeadLetters(pool, schema, name),
    onCollectError: (error) => log.warn({ err: error }, 'event consumer metrics could not be read'),
  });
  const settler = new MessageSettler(application, declaration, metrics, log);

  let stopping = false;
  let messages: ConsumerMessages | undefined;
  let wake: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const reading = (async () => {
    while (!stopping) {
      try {
        messages = await jsConsumer.consume({ max_messages: Math.max(2 * batchSize, 10) });
        if (stopping) {
          // stop() came while the pull was being set up and found nothing to close. Not awaited:
          // nothing will read up to the stop it queues (see stop()).
          void messages.close();
          break;
        }
        void logNotifications(messages, log);
        for await (const batch of inBatches(messages, batchSize)) {
          // Left unacked, messages taken after stop() are redelivered to the next instance.
          if (stopping) break;
          await settler.settle(batch);
        }
      } catch (error) {
        if (stopping) break;
        log.error({ err: error }, 'event consumer stopped reading; restarting');
      }
      if (!stopping) await pause(RESTART_DELAY_MS);
    }
  })();

  return {
    stop: async () => {
      if (stopping) return reading;
      stopping = true;
      wake?.();
      // close() queues a stop behind the messages the iterator has buffered and resolves only
      // when someone reads up to it; the loop leaves at its next batch instead, so waiting for
      // close() would wait forever whenever messages were buffered. Those stay unacked and are
      // redelivered after ack_wait.
      void messages?.close();
      await reading;
      metrics.unregister();
    },
    listDeadLetters: (listOptions) => listDeadLetters(pool, schema, name, listOptions),
    replayDeadLetter: async (eventId) => {
      const result = await replayDeadLetter(application, eventId);
      if (result.outcome !== 'kept') metrics.count(result.outcome);
      log.info({ eventId, outcome: result.outcome }, 'dead letter replayed');
      return result;
    },
  };
}

/** Settles delivered messages: one transaction, then ack, nak or term each. */
class MessageSettler<P> {
  constructor(
    private readonly application: EventApplication<P>,
    private readonly declaration: ConsumerDeclaration,
    private readonly metrics: ConsumerMetrics,
    private readonly log: Logger,
  ) {}

  async settle(messages: readonly JsMsg[]): Promise<void> {
    if (messages.length > 1) {
      try {
        await this.settleTogether(messages);
        return;
      } catch (error) {
        // One bad event must not hold back the others: retry them one per transaction.
        this.log.warn({ err: error, messages: messages.length }, 'event batch failed; settling its events one by one');
      }
    }
    for (const message of messages) {
      try {
        await this.settleTogether([message]);
      } catch (error) {
        await this.settleFailure(message, error);
      }
    }
  }

  private async settleTogether(messages: readonly JsMsg[]): Promise<void> {
    const { application } = this;
    const verdicts = await inTransaction(application.pool, async (tx) => {
      const reads = messages.map((m) => readEvent(application, m.subject, m.string(), fallbackIdOf(m)));
      const events = reads.flatMap((read) => (read.ok ? [read.event] : []));
      const outcomes = await applyEvents(tx, application, events);
      const letters: NewDeadLetter[] = [];
      let next = 0;
      const verdicts = messages.map((message, i): Verdict => {
        const read = reads[i]!;
        const deliveries = message.info.deliveryCount;
        if (!read.ok) {
          const { eventId, envelope, reason, detail } = read;
          letters.push({ eventId, subject: message.subject, envelope, reason, detail, deliveries });
          return { action: 'dead', reason: read.reason };
        }
        const outcome = outcomes[next++]!;
        if (outcome !== 'gap') return { action: 'ack', outcome };
        if (deliveries < this.declaration.maxDeliver) return { action: 'retry', reason: DEAD_LETTER_REASONS.versionGap };
        const { envelope } = read.event;
        letters.push({
          eventId: envelope.id,
          subject: message.subject,
          envelope: bodyOf(message),
          reason: DEAD_LETTER_REASONS.versionGap,
          detail: `version ${envelope.aggregateVersion} of ${envelope.aggregateType} ${envelope.aggregateId} arrived before its predecessor`,
          deliveries,
        });
        return { action: 'dead', reason: DEAD_LETTER_REASONS.versionGap };
      });
      await recordDeadLetters(tx, application.schema, application.consumer, letters);
      return verdicts;
    });
    // Acks only now that the effect is committed: a crash before this line means a redelivery, never a loss.
    messages.forEach((message, i) => this.answer(message, verdicts[i]!));
  }

  private answer(message: JsMsg, verdict: Verdict): void {
    switch (verdict.action) {
      case 'ack':
        message.ack();
        this.metrics.count(verdict.outcome);
        return;
      case 'retry': {
        const delayMs = backoffDelayMs(this.declaration, message.info.deliveryCount);
        message.nak(delayMs);
        this.metrics.count('retried');
        this.log.debug({ ...identify(message), reason: verdict.reason, delayMs }, 'event put back until its predecessor arrives');
        return;
      }
      case 'dead':
        // No reason on the TERM: nats-server 2.9 does not read one (and then keeps the message); dead_letters has it.
        message.term();
        this.metrics.count('dead_lettered');
        this.log.warn({ ...identify(message), reason: verdict.reason }, 'event moved to dead letters');
        return;
      default: {
        const unknown: never = verdict;
        throw new TypeError(`unknown verdict ${JSON.stringify(unknown)}`);
      }
    }
  }

  private async settleFailure(message: JsMsg, error: unknown): Promise<void> {
    const deliveries = message.info.deliveryCount;
    const detail = describe(error);
    if (deliveries < this.declaration.maxDeliver) {
      const delayMs = backoffDelayMs(this.declaration, deliveries);
      message.nak(delayMs);
      this.metrics.count('retried');
      this.log.warn({ ...identify(message), err: error, deliveries, delayMs }, 'event failed; retrying after backoff');
      return;
    }
    const { application } = this;
    try {
      await inTransaction(application.pool, (tx) =>
        recordDeadLetters(tx, application.schema, application.consumer, [
          {
            eventId: eventIdOf(message),
            subject: message.subject,
            envelope: bodyOf(message),
            reason: DEAD_LETTER_REASONS.handlerFailed,
            detail,
            deliveries,
          },
        ]),
      );
    } catch (recordError) {
      // JetStream will not deliver it again (max_deliver): say so loudly, the stream still holds it.
      this.log.error(
        { ...identify(message), err: recordError, cause: detail, deliveries },
        'event failed on its last delivery and could not be dead-lettered',
      );
      message.nak();
      return;
    }
    message.term();
    this.metrics.count('dead_lettered');
    this.log.error({ ...identify(message), err: error, deliveries }, 'event moved to dead letters after its last delivery');
  }
}

/**
 * Groups what the iterator already holds into batches of up to `size`,
 * without waiting for more: a batch closes as soon as the next message is not
 * immediately at hand.
 */
export async function* inBatches<T>(messages: AsyncIterable<T>, size: number): AsyncGenerator<T[]> {
  const iterator = messages[Symbol.asyncIterator]();
  let waiting: Promise<IteratorResult<T>> | undefined;
  for (;;) {
    const first = await (waiting ?? iterator.next());
    waiting = undefined;
    if (first.done) return;
    const batch = [first.value];
    let ended = false;
    while (batch.length < size) {
      const next = iterator.next();
      const result = await Promise.race([next, nextMacrotask()]);
      if (result === undefined) {
        // Nothing at hand: settle what we have; this read carries over to the next batch
        // (and must not become an unhandled rejection if the loop is left before then).
        next.catch(() => undefined);
        waiting = next;
        break;
      }
      if (result.done) {
        ended = true;
        break;
      }
      batch.push(result.value);
    }
    yield batch;
    if (ended) return;
  }
}

function nextMacrotask(): Promise<undefined> {
  return new Promise((resolve) => setImmediate(() => resolve(undefined)));
}

async function logNotifications(messages: ConsumerMessages, log: Logger): Promise<void> {
  for await (const status of messages.status()) {
    switch (status.type) {
      case 'consumer_deleted':
      case 'consumer_not_found':
      case 'stream_not_found':
      case 'heartbeats_missed':
      case 'exceeded_limits':
      case 'no_responders':
        log.warn({ status: status.type }, 'event consumer status');
        break;
      default:
        break;
    }
  }
}

function bodyOf(message: JsMsg): unknown {
  const text = message.string();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function eventIdOf(message: JsMsg): string {
  const body = bodyOf(message);
  if (typeof body === 'object' && body !== null && 'id' in body && typeof body.id === 'string' && body.id.length > 0) {
    return body.id.slice(0, 200);
  }
  return fallbackIdOf(message);
}

/** Names a dead letter whose body carries no event id: the publisher's msg id, else the stream position. */
function fallbackIdOf(message: JsMsg): string {
  return message.headers?.get('Nats-Msg-Id') || `${message.info.stream}:${message.seq}`;
}

function identify(message: JsMsg): { eventId: string; subject: string; streamSequence: number; deliveries: number } {
  return { eventId: eventIdOf(message), subject: message.subject, streamSequence: message.seq, deliveries: message.info.deliveryCount };
}

function describe(error: unknown): string {
  const text = isAppError(error) ? `${error.code}: ${error.message}` : error instanceof Error ? error.message : String(error);
  return text.slice(0, MAX_DETAIL_CHARS);
}
