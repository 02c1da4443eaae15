import { DeliverPolicy, jetstream, type ConsumerMessages, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { eventEnvelopeSchema, type EventEnvelope } from '@aifactory/contracts';
import type { Logger } from '@aifactory/logging';

export type EventListener = (event: EventEnvelope) => void;

interface Feed {
  listeners: Set<EventListener>;
  messages?: ConsumerMessages;
  stopped: boolean;
}

/**
 * Root events for subscriptions, taken from JetStream: one ordered consumer
 * per subject per gateway instance, however many subscribers listen, started
 * with the first and stopped with the last. A subscription sees what happens
 * after it starts.
 */
export class EventFeeds {
  private readonly js: JetStreamClient;
  private readonly feeds = new Map<string, Feed>();

  constructor(
    nc: NatsConnection,
    private readonly streamFor: (subject: string) => string | undefined,
    private readonly logger: Logger,
  ) {
    this.js = jetstream(nc);
  }

  /** Subjects with a live consumer. */
  get activeSubjects(): number {
    return this.feeds.size;
  }

  /** Subscriptions listening, over all subjects. */
  get listeners(): number {
    let count = 0;
    for (const feed of this.feeds.values()) count += feed.listeners.size;
    return count;
  }

  async listen(subject: string, listener: EventListener): Promise<() => void> {
    let feed = this.feeds.get(subject);
    if (!feed) {
      feed = { listeners: new Set(), stopped: false };
      this.feeds.set(subject, feed);
      try {
        await this.start(subject, feed);
      } catch (error) {
        this.feeds.delete(subject);
        throw error;
      }
    }
    feed.listeners.add(listener);
    const current = feed;
    return () => {
      current.listeners.delete(listener);
      if (current.listeners.size > 0 || current.stopped) return;
      current.stopped = true;
      this.feeds.delete(subject);
      void current.messages?.close();
    };
  }

  async close(): Promise<void> {
    const feeds = [...this.feeds.values()];
    this.feeds.clear();
    for (const feed of feeds) {
      feed.stopped = true;
      await feed.messages?.close();
    }
  }

  private async start(subject: string, feed: Feed): Promise<void> {
    const stream = this.streamFor(subject);
    if (!stream) throw new Error(`no stream carries ${subject}`);
    // From the moment of listening, not from when the server gets round to creating the consumer: nothing published after a subscriber arrived is missed.
    const consumer = await this.js.consumers.get(stream, {
      filter_subjects: subject,
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: new Date().toISOString(),
      // Milliseconds; the server removes the consumer this long after its last subscriber left.
      inactive_threshold: 5_000,
    });
    const messages = await consumer.consume();
    feed.messages = messages;
    void (async () => {
      for await (const message of messages) {
        let envelope: EventEnvelope;
        try {
          envelope = eventEnvelopeSchema.parse(message.json());
        } catch (error) {
          this.logger.warn({ err: error, subject }, 'subscription feed dropped a message that is not an event envelope');
          continue;
        }
        for (const listener of feed.listeners) listener(envelope);
      }
    })().catch((error: unknown) => this.logger.error({ err: error, subject }, 'subscription feed stopped'));
  }
}
