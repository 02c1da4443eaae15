import type { Logger } from '@aifactory/logging';
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';

/** One KV record as the reader needs it: the key, its revision, and either a value or its removal. */
export interface KeyRecord {
  key: string;
  revision: number;
  /** A KV delete or purge: the key no longer has a value. */
  removed: boolean;
  data: Uint8Array;
}

export interface KeyWatchOptions {
  js: JetStreamClient;
  stream: string;
  bucket: string;
  /** A key or key pattern inside the bucket (`catalog`, `policy.>`, `>`). */
  key: string;
  logger: Logger;
  /** Called in revision order: first the values present at start, then every change. */
  onRecord(record: KeyRecord): void;
}

export interface KeyWatch {
  /** Resolves once every value present when the watch began has been delivered. */
  loaded: Promise<void>;
  /** Resolves with a reason if the watch ends without stop(): the caller binds again. */
  lost: Promise<string>;
  stop(): Promise<void>;
}

/** The header JetStream KV sets on a delete or purge record. */
const KV_OPERATION_HEADER = 'KV-Operation';

/**
 * What `kv.watch()` does, plus the one thing it does not tell its caller:
 * when the initial values have all arrived. @nats-io/kv 3.x has no
 * "initial data done" marker, so we read the ordered consumer's pending count
 * at creation ourselves. Each watch is an ordered push consumer (nats-server
 * 2.9 supports it; the client recreates it after a gap or a reconnect,
 * resuming after the last sequence it delivered) that starts with the last
 * value of each key and then follows every new write.
 */
export async function watchKeys(options: KeyWatchOptions): Promise<KeyWatch> {
  const keyPrefix = `$KV.${options.bucket}.`;
  const consumer = await options.js.consumers.getPushConsumer(options.stream, {
    filter_subjects: keyPrefix + options.key,
    deliver_policy: DeliverPolicy.LastPerSubject,
  });
  let remaining = (await consumer.info(true)).num_pending;
  let markLoaded!: () => void;
  const loaded = new Promise<void>((resolve) => (markLoaded = resolve));
  if (remaining === 0) markLoaded();

  const deliver = (message: JsMsg): void => {
    const initial = remaining > 0;
    const operation = message.headers?.get(KV_OPERATION_HEADER);
    const record: KeyRecord = {
      key: message.subject.substring(keyPrefix.length),
      revision: message.seq,
      removed: operation === 'DEL' || operation === 'PURGE',
      data: message.data,
    };
    try {
      options.onRecord(record);
    } catch (error) {
      // A throwing callback would stop the consumer and silently freeze the model.
      options.logger.error({ err: error, key: record.key, revision: record.revision }, 'access model record handler failed');
    }
    if (!initial) return;
    remaining -= 1;
    // A value overwritten while loading is never delivered; pending 0 means we caught up anyway.
    if (remaining === 0 || message.info.pending === 0) {
      remaining = 0;
      markLoaded();
    }
  };
  const messages = await consumer.consume({ callback: deliver });

  let stopping = false;
  const lost = new Promise<string>((resolve) => {
    void messages.closed().then((error) => {
      if (!stopping) resolve(error instanceof Error ? error.message : 'watch closed');
    });
    void followStatus(messages, options, resolve);
  });
  return {
    loaded,
    lost,
    async stop() {
      stopping = true;
      await messages.close();
    },
  };
}

/**
 * The ordered consumer recovers from a gap by itself, resuming after the last
 * sequence it delivered. When the server stops sending to it altogether (its
 * heartbeats missed: the consumer or the whole bucket is gone), that sequence
 * may mean nothing in a recreated bucket, so the reader starts over instead.
 * Missed heartbeats take two idle-heartbeat periods (30 s each, set by the
 * client for ordered consumers); IAM's own heartbeat makes the reader stale
 * sooner than that, which is what callers act on.
 */
async function followStatus(messages: ConsumerMessages, options: KeyWatchOptions, lose: (reason: string) => void): Promise<void> {
  for await (const status of messages.status()) {
    switch (status.type) {
      case 'stream_not_found':
        lose('bucket not found');
        return;
      case 'heartbeats_missed':
        lose(`${status.count} heartbeats missed`);
        return;
      case 'consumer_deleted':
        lose('consumer deleted');
        return;
      case 'ordered_consumer_recreated':
        options.logger.info({ key: options.key }, 'access model watch resumed after a gap');
        break;
      default:
        break;
    }
  }
}
