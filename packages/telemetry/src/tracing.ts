import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Context,
  type Span,
  type SpanOptions,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
// The processors and exporters come through sdk-trace-node so they are the
// same sdk-trace-base build as the provider they are handed to.
import {
  BatchSpanProcessor,
  InMemorySpanExporter,
  NodeTracerProvider,
  SimpleSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-node';

export type TraceExporterKind = 'none' | 'otlp' | 'memory';

export interface TracingOptions {
  serviceName: string;
  exporter: TraceExporterKind;
  /** Required for 'otlp', e.g. http://collector:4318/v1/traces. */
  otlpEndpoint?: string;
}

export interface Tracing {
  enabled: boolean;
  /** Set when the process-wide registration exports to memory (tests). */
  memoryExporter?: InMemorySpanExporter;
  shutdown(): Promise<void>;
}

const TRACER_NAME = '@aifactory/telemetry';

interface Registration {
  provider: NodeTracerProvider;
  memoryExporter?: InMemorySpanExporter;
  users: number;
}

/**
 * The OpenTelemetry API has one global provider per process; tests run the
 * gateway and several subgraphs in one process, so later callers share the
 * first registration and the last one to shut down tears it down.
 */
let registration: Registration | undefined;

/**
 * Registers a global tracer provider (AsyncLocalStorage context, W3C
 * trace-context propagation), which also picks up the spans @apollo/gateway
 * creates through the global API. 'none' registers nothing, so tracing costs
 * nothing; a later enabled call may still register.
 */
export function startTracing(options: TracingOptions): Tracing {
  if (registration === undefined) {
    const { exporter } = options;
    if (exporter === 'none') return { enabled: false, shutdown: async () => {} };
    registration = register({ ...options, exporter });
  }
  const shared = registration;
  shared.users += 1;
  let released = false;
  return {
    enabled: true,
    memoryExporter: shared.memoryExporter,
    shutdown: async () => {
      if (released) return;
      released = true;
      shared.users -= 1;
      if (shared.users > 0) return;
      if (registration === shared) registration = undefined;
      await shared.provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

function register(options: TracingOptions & { exporter: 'otlp' | 'memory' }): Registration {
  const { processor, memoryExporter } = spanProcessor(options);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName }),
    spanProcessors: [processor],
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  return { provider, memoryExporter, users: 0 };
}

function spanProcessor(options: TracingOptions & { exporter: 'otlp' | 'memory' }): {
  processor: SpanProcessor;
  memoryExporter?: InMemorySpanExporter;
} {
  switch (options.exporter) {
    case 'otlp': {
      if (!options.otlpEndpoint) throw new Error('tracing with the otlp exporter needs otlpEndpoint');
      return { processor: new BatchSpanProcessor(new OTLPTraceExporter({ url: options.otlpEndpoint })) };
    }
    case 'memory': {
      // Simple, not batched: a test reads a span as soon as it has ended.
      const memoryExporter = new InMemorySpanExporter();
      return { processor: new SimpleSpanProcessor(memoryExporter), memoryExporter };
    }
    default: {
      const unknown: never = options.exporter;
      throw new Error(`unknown trace exporter ${String(unknown)}`);
    }
  }
}

/** Writes `traceparent` (and `tracestate`) of the active context into outgoing headers. */
export function injectTraceContext(carrier: Record<string, string>): void {
  propagation.inject(context.active(), carrier);
}

/**
 * Runs `fn` in an active SERVER span that continues the caller's trace from
 * the W3C headers (Node's lower-cased IncomingHttpHeaders) or starts a new one.
 */
export function withServerSpan<T>(
  name: string,
  incomingHeaders: Record<string, string | string[] | undefined>,
  attributes: Record<string, string | number>,
  fn: () => Promise<T>,
): Promise<T> {
  const parent = propagation.extract(ROOT_CONTEXT, incomingHeaders);
  return runInSpan(name, { kind: SpanKind.SERVER, attributes }, parent, fn);
}

/** Runs `fn` in an active INTERNAL span, a child of the active context. */
export function withSpan<T>(name: string, attributes: Record<string, string | number>, fn: () => Promise<T>): Promise<T> {
  return runInSpan(name, { kind: SpanKind.INTERNAL, attributes }, context.active(), fn);
}

function runInSpan<T>(
  name: string,
  options: SpanOptions,
  parent: Context,
  fn: () => Promise<T>,
): Promise<T> {
  // Asked for on every call: a tracer taken once would keep pointing at a
  // provider that was shut down and replaced.
  return trace.getTracer(TRACER_NAME).startActiveSpan(name, options, parent, async (span: Span) => {
    try {
      return await fn();
    } catch (error) {
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  });
}
