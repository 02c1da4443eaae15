import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { injectTraceContext, startTracing, withServerSpan, withSpan, type Tracing } from './tracing.js';

const CALLER_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN_ID = '00f067aa0ba902b7';
const CALLER_TRACEPARENT = `00-${CALLER_TRACE_ID}-${CALLER_SPAN_ID}-01`;

describe("tracing with the 'memory' exporter", () => {
  let tracing: Tracing;

  beforeAll(() => {
    tracing = startTracing({ serviceName: 'billing', exporter: 'memory' });
  });

  afterAll(() => tracing.shutdown());

  function finishedSpan(name: string) {
    const span = tracing.memoryExporter?.getFinishedSpans().find((candidate) => candidate.name === name);
    if (span === undefined) throw new Error(`no finished span named ${name}`);
    return span;
  }

  it('continues the caller trace from its traceparent header in a server span', async () => {
    const result = await withServerSpan(
      'POST /graphql continue',
      { traceparent: CALLER_TRACEPARENT, 'content-type': 'application/json' },
      { 'graphql.operation.name': 'Charge' },
      async () => 42,
    );

    expect(result).toBe(42);
    const span = finishedSpan('POST /graphql continue');
    expect(span.spanContext().traceId).toBe(CALLER_TRACE_ID);
    expect(span.parentSpanContext?.spanId).toBe(CALLER_SPAN_ID);
    expect(span.kind).toBe(SpanKind.SERVER);
    expect(span.attributes['graphql.operation.name']).toBe('Charge');
    expect(span.resource.attributes['service.name']).toBe('billing');
  });

  it('starts a new trace when the request carries no traceparent', async () => {
    await withServerSpan('POST /graphql fresh', {}, {}, async () => undefined);

    const span = finishedSpan('POST /graphql fresh');
    expect(span.parentSpanContext).toBeUndefined();
    expect(span.spanContext().traceId).not.toBe(CALLER_TRACE_ID);
  });

  it('writes the active span as traceparent for an outgoing call', async () => {
    const outgoing: Record<string, string> = {};
    await withServerSpan('POST /graphql outgoing', { traceparent: CALLER_TRACEPARENT }, {}, () =>
      withSpan('fetch projects', { 'peer.service': 'projects' }, async () => injectTraceContext(outgoing)),
    );

    const child = finishedSpan('fetch projects');
    expect(outgoing.traceparent).toBe(`00-${CALLER_TRACE_ID}-${child.spanContext().spanId}-01`);
    expect(child.parentSpanContext?.spanId).toBe(finishedSpan('POST /graphql outgoing').spanContext().spanId);
  });

  it('records the exception, marks the span failed and rethrows', async () => {
    const failure = new Error('subgraph unreachable');

    await expect(withSpan('fetch failing', {}, async () => Promise.reject(failure))).rejects.toBe(failure);

    const span = finishedSpan('fetch failing');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.events.map((event) => event.name)).toEqual(['exception']);
  });

  it('records spans made through the global API, as @apollo/gateway does', async () => {
    trace.getTracer('@apollo/gateway').startActiveSpan('gateway.request', (span) => span.end());

    expect(finishedSpan('gateway.request').resource.attributes['service.name']).toBe('billing');
  });

  it('hands a second caller in the process the first registration', async () => {
    const second = startTracing({ serviceName: 'projects', exporter: 'memory' });
    await second.shutdown();

    expect(second.memoryExporter).toBe(tracing.memoryExporter);
    await withSpan('after a sibling shut down', {}, async () => undefined);
    expect(finishedSpan('after a sibling shut down').resource.attributes['service.name']).toBe('billing');
  });
});

describe("tracing with the 'none' exporter", () => {
  it('still runs the handler and returns its value', async () => {
    const tracing = startTracing({ serviceName: 'billing', exporter: 'none' });

    const result = await withServerSpan('POST /graphql', { traceparent: CALLER_TRACEPARENT }, {}, () =>
      withSpan('fetch projects', {}, async () => 'charged'),
    );

    expect(tracing.enabled).toBe(false);
    expect(tracing.memoryExporter).toBeUndefined();
    expect(result).toBe('charged');
    await tracing.shutdown();
  });
});

describe("tracing with the 'otlp' exporter", () => {
  it('needs an endpoint', () => {
    expect(() => startTracing({ serviceName: 'billing', exporter: 'otlp' })).toThrow(/otlpEndpoint/);
  });

  it('sends the batched spans to the collector at shutdown', async () => {
    const received: IncomingMessage[] = [];
    const collector = createServer((request, response) => {
      received.push(request);
      request.resume();
      request.on('end', () => response.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    });
    collector.listen(0, '127.0.0.1');
    await once(collector, 'listening');
    const { port } = collector.address() as AddressInfo;

    const tracing = startTracing({ serviceName: 'billing', exporter: 'otlp', otlpEndpoint: `http://127.0.0.1:${port}/v1/traces` });
    await withSpan('rate window', {}, async () => undefined);
    await tracing.shutdown();
    collector.closeAllConnections();
    collector.close();

    expect(received.map((request) => `${request.method} ${request.url}`)).toEqual(['POST /v1/traces']);
  });
});
