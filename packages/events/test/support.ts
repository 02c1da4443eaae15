import { randomUUID } from 'node:crypto';
import { createLogger, type Logger } from '@aifactory/logging';
import type { ServiceMetrics } from '@aifactory/telemetry';
import { captureLogs, type PrivateNats } from '@aifactory/testing';
import type { JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { OutboxEventInput } from '../src/index.js';

/** The relay logs to a capture, so a test can read its lines and the run stays quiet. */
export function capturedLogger(): { logger: Logger; lines: () => ReturnType<ReturnType<typeof captureLogs>['lines']> } {
  const logs = captureLogs();
  return { logger: createLogger({ service: 'events-test', level: 'debug', destination: logs.destination }), lines: logs.lines };
}

/** A client that reconnects quickly and forever, as the services' connectNats does, but faster. */
export function connectTo(server: PrivateNats, auth: { user?: string; pass?: string } = {}): Promise<NatsConnection> {
  return connect({
    servers: server.url,
    ...auth,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
    reconnectJitter: 50,
    name: 'events-test',
  });
}

/** Version `version` of an organization's story: created first, then updated. */
export function organizationEvent(organizationId: string, version: number, extra: Partial<OutboxEventInput> = {}): OutboxEventInput {
  return {
    type: version === 1 ? 'platform.iam.organization.created' : 'platform.iam.organization.updated',
    version: 1,
    aggregateId: organizationId,
    aggregateVersion: version,
    actor: { type: 'user', id: 'user-1' },
    organizationId,
    correlationId: `corr-${randomUUID()}`,
    payload: { id: organizationId, slug: `org-${organizationId.slice(0, 8)}`, name: `Org v${version}`, billingCurrency: 'EUR', status: 'active' },
    ...extra,
  };
}

/** Polls until `probe` returns something other than undefined or false. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false>,
  what: string,
  { timeoutMs = 20_000, intervalMs = 25 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Every message now in a stream, read once with an ordered consumer: total and distinct event ids. */
export async function readStream(js: JetStreamClient, stream: string, expected: number): Promise<{ total: number; ids: Set<string> }> {
  const consumer = await js.consumers.get(stream);
  const ids = new Set<string>();
  let total = 0;
  while (total < expected) {
    const batch = await consumer.fetch({ max_messages: Math.min(500, expected - total), expires: 2_000 });
    let received = 0;
    for await (const message of batch) {
      received += 1;
      total += 1;
      ids.add(message.json<{ id: string }>().id);
    }
    if (received === 0) break;
  }
  return { total, ids };
}

/** A counter's value summed over its labels (0 when it was never incremented). */
export async function counterValue(metrics: ServiceMetrics, name: string): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  return values.reduce((sum, sample) => sum + sample.value, 0);
}

/** A gauge's value for the iam schema, read the way a scrape reads it (its collect runs). */
export async function gaugeValue(metrics: ServiceMetrics, name: string, schema = 'iam'): Promise<number | undefined> {
  const metric = metrics.registry.getSingleMetric(name);
  if (metric === undefined) return undefined;
  const { values } = await metric.get();
  return values.find((sample) => sample.labels.schema === schema)?.value;
}
