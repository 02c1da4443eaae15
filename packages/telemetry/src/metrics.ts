import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Gateway latencies run from sub-millisecond cache hits to slow subgraph fan-outs. */
const REQUEST_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const OPERATION_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * Operation names are chosen by clients, so every distinct one would be a new
 * time series; past this many a misbehaving client cannot grow the registry.
 */
const MAX_OPERATION_NAMES = 500;

/** Stands for a request without an operation name. */
const NO_OPERATION = '-';

/**
 * The metrics of one service, in a registry of its own rather than
 * prom-client's global one, so several services can share a test process.
 */
export class ServiceMetrics {
  readonly registry: Registry;
  private readonly requestDuration: Histogram<'route' | 'operation' | 'outcome'>;
  private readonly operationNames = new Set<string>();

  constructor(service: string) {
    this.registry = new Registry();
    this.registry.setDefaultLabels({ service });
    collectDefaultMetrics({ register: this.registry });
    this.requestDuration = this.histogram(
      'aif_http_request_duration_seconds',
      'Duration of HTTP requests by route, GraphQL operation name ("-" when none) and outcome ("ok" or the error code).',
      ['route', 'operation', 'outcome'],
      REQUEST_DURATION_BUCKETS,
    );
  }

  /** Counts one request and its latency; `operation` is the GraphQL operation name or "-". */
  observeRequest(route: string, operation: string, outcome: string, seconds: number): void {
    this.requestDuration.observe({ route, operation: this.operationLabel(operation), outcome }, seconds);
  }

  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> {
    return this.existing(name, Counter) ?? new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  gauge<L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    collect?: (gauge: Gauge<L>) => void | Promise<void>,
  ): Gauge<L> {
    return (
      this.existing(name, Gauge) ??
      new Gauge({
        name,
        help,
        labelNames,
        registers: [this.registry],
        ...(collect && {
          collect(this: Gauge<L>) {
            return collect(this);
          },
        }),
      })
    );
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets?: number[]): Histogram<L> {
    return (
      this.existing(name, Histogram) ??
      new Histogram({ name, help, labelNames, registers: [this.registry], ...(buckets && { buckets }) })
    );
  }

  /** The registry in Prometheus text format, for a `/metrics` route. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /**
   * Metrics are registered once per name, so callers can ask for a metric
   * where they use it instead of threading instances around.
   */
  private existing<M>(name: string, kind: abstract new (...args: never[]) => M): M | undefined {
    const metric = this.registry.getSingleMetric(name);
    if (metric === undefined) return undefined;
    if (!(metric instanceof kind)) {
      throw new Error(`metric ${name} is already registered as another kind`);
    }
    return metric;
  }

  private operationLabel(operation: string): string {
    if (operation === NO_OPERATION) return operation;
    if (!OPERATION_NAME_PATTERN.test(operation)) return 'invalid';
    if (this.operationNames.has(operation)) return operation;
    if (this.operationNames.size >= MAX_OPERATION_NAMES) return 'other';
    this.operationNames.add(operation);
    return operation;
  }
}
