export { ServiceMetrics } from './metrics.js';
export type { Counter, Gauge, Histogram } from 'prom-client';
export {
  injectTraceContext,
  startTracing,
  withServerSpan,
  withSpan,
  type TraceExporterKind,
  type Tracing,
  type TracingOptions,
} from './tracing.js';
export { requestSpans } from './request-spans.js';
