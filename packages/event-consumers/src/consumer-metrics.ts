import type { ServiceMetrics } from '@aifactory/telemetry';

export type ConsumerOutcome = 'applied' | 'skipped' | 'duplicate' | 'retried' | 'dead_lettered';

/** What a running consumer reports when the metrics are scraped. */
export interface ConsumerGaugeSource {
  stream: string;
  consumer: string;
  /** Messages in the stream the consumer has not been delivered yet (`num_pending`). */
  pending(): Promise<number>;
  deadLetters(): Promise<number>;
  /** A failed read leaves this consumer out of one scrape; the source says why in its own log. */
  onCollectError(error: unknown): void;
}

export interface ConsumerMetrics {
  count(outcome: ConsumerOutcome, n?: number): void;
  /** Stops reporting this consumer's gauges (at stop). */
  unregister(): void;
}

/**
 * A ServiceMetrics registers each gauge once, with the collect function of
 * the first caller; several consumers in one service therefore share one
 * list of sources per registry, read at every scrape.
 */
const sourcesByMetrics = new WeakMap<ServiceMetrics, Set<ConsumerGaugeSource>>();

export function registerConsumerMetrics(
  metrics: ServiceMetrics,
  source: ConsumerGaugeSource,
): ConsumerMetrics {
  let sources = sourcesByMetrics.get(metrics);
  if (!sources) {
    const registered = new Set<ConsumerGaugeSource>();
    sources = registered;
    sourcesByMetrics.set(metrics, registered);
    const perSourceGauge = (name: string, help: string, read: (source: ConsumerGaugeSource) => Promise<number>) =>
      metrics.gauge(name, help, ['stream', 'consumer'], async (gauge) => {
        gauge.reset();
        await Promise.all(
          [...registered].map(async (s) => {
            try {
              gauge.set({ stream: s.stream, consumer: s.consumer }, await read(s));
            } catch (error) {
              s.onCollectError(error);
            }
          }),
        );
      });
    perSourceGauge(
      'aif_event_consumer_pending_messages',
      'Consumer lag: messages of the stream not yet delivered to the durable consumer (num_pending).',
      (s) => s.pending(),
    );
    perSourceGauge('aif_event_consumer_dead_letters', 'Events in the consumer dead_letters table, waiting for a replay.', (s) => s.deadLetters());
  }
  sources.add(source);
  const events = metrics.counter(
    'aif_event_consumer_events_total',
    'Events settled by a consumer, by outcome (applied, skipped by the version rule, duplicate, retried, dead_lettered).',
    ['stream', 'consumer', 'outcome'],
  );
  const registeredSources = sources;
  return {
    count: (outcome, n = 1) => {
      if (n > 0) events.inc({ stream: source.stream, consumer: source.consumer, outcome }, n);
    },
    unregister: () => {
      registeredSources.delete(source);
    },
  };
}
