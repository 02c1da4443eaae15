import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseEvent, prefixSubject, type Actor } from '@aifactory/contracts';
import { UsageEvents } from '@aifactory/usage-emitter';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { percentile } from './load.js';
import type { PublishRun, UsagePublishCommand, UsagePublishPlan, UsagePublishReply } from './usage-bench.js';

// The products' side of `npm run bench -- usage`, in a process of its own so
// building and publishing 100,000 events does not share an event loop with
// the billing pipeline being measured. It builds the events once, computes
// what billing must post for them (with its own arithmetic, not billing's),
// and publishes the same bytes on command: into a plain stream (the raw
// baseline) or onto the usage subjects billing consumes. Driven over IPC by
// usage-bench.ts.

/** A price's decimals: unit prices are DECIMAL(30,12) minor units. */
const PICO = 10n ** 12n;
/** A publish whose ack does not come is sent again with the same msg id (JetStream drops a stored one), as a relay would. */
const PUBLISH_TRIES = 5;
const ACK_TIMEOUT_MS = 30_000;
const ACTOR: Actor = { type: 'service_account', id: 'sa-bench-tokenfactory' };
const TOKENFACTORY = new UsageEvents('tokenfactory');

interface BuiltEvent {
  id: string;
  type: string;
  body: string;
}

const wallMs = () => performance.timeOrigin + performance.now();

function send(reply: UsagePublishReply): void {
  process.send?.(reply);
}

const inbox: UsagePublishCommand[] = [];
let delivered: (() => void) | undefined;
process.on('message', (message) => {
  inbox.push(message as UsagePublishCommand);
  delivered?.();
});
// Orphaned (the benchmark killed outright), it goes too.
process.once('disconnect', () => process.exit(0));

async function nextCommand(): Promise<UsagePublishCommand> {
  while (inbox.length === 0) await new Promise<void>((resolve) => (delivered = resolve));
  return inbox.shift()!;
}

/** A unit price as an integer count of 10^-12 minor units. */
function picoOf(unitPrice: string): bigint {
  const [whole, fraction = ''] = unitPrice.split('.');
  return BigInt(whole!) * PICO + BigInt(fraction.padEnd(12, '0'));
}

/** The price in force for a unit and resource: the resource's own, else the resource type's, else the unit's. */
function priceOf(plan: UsagePublishPlan, unit: string, resourceType: string, resourceId: string): string {
  const candidates = plan.prices.filter((p) => p.unit === unit);
  const price =
    candidates.find((p) => p.resourceType === resourceType && p.resourceId === resourceId) ??
    candidates.find((p) => p.resourceType === resourceType && p.resourceId === '*') ??
    candidates.find((p) => p.resourceType === '*');
  if (!price) throw new Error(`the plan has no price for ${unit}`);
  return price.unitPrice;
}

/**
 * Token Factory usage of random organizations' projects over the last
 * quarter hour, the envelopes as the outbox relay would publish them, and
 * per remainder chain (organization, project, UTC month) the whole minor
 * units billing must post: floor(sum of quantity x price / base_per_unit).
 */
function buildEvents(plan: UsagePublishPlan): { events: BuiltEvent[]; chains: [string, string][]; payloadBytes: number } {
  const aggregateTypes = new Map<string, string>();
  const exact = new Map<string, bigint>();
  const events: BuiltEvent[] = [];
  const now = Date.now();
  let payloadBytes = 0;
  for (let i = 0; i < plan.events; i += 1) {
    const scope = plan.scopes[Math.floor(Math.random() * plan.scopes.length)]!;
    const pick = Math.random();
    const unit = pick < 0.45 ? 'token_output' : pick < 0.9 ? 'token_input' : 'request';
    const resourceId = Math.random() < 0.3 ? 'large' : 'llama';
    const quantity = unit === 'request' ? 1n : BigInt(1 + Math.floor(Math.random() * 4_000));
    const occurredAt = new Date(now - Math.floor(Math.random() * 900_000));
    const input = TOKENFACTORY.recorded({ ...scope, actor: ACTOR }, { usageId: randomUUID(), resourceType: 'model', resourceId, unit, unitVersion: 1, quantity, occurredAt });
    let aggregateType = aggregateTypes.get(input.type);
    if (aggregateType === undefined) {
      const parsed = parseEvent({ type: input.type, version: input.version, payload: input.payload as Record<string, unknown> });
      if (!parsed.ok) throw new Error(`the contracts refuse ${input.type}: ${parsed.reason}`);
      aggregateType = parsed.definition.aggregateType;
      aggregateTypes.set(input.type, aggregateType);
    }
    const body = JSON.stringify({
      id: input.id,
      type: input.type,
      version: input.version,
      occurredAt: occurredAt.toISOString(),
      correlationId: `bench-${randomUUID()}`,
      traceparent: null,
      actor: ACTOR,
      organizationId: scope.organizationId,
      departmentId: scope.departmentId,
      projectId: scope.projectId,
      registryVersions: {},
      aggregateType,
      aggregateId: input.aggregateId,
      aggregateVersion: input.aggregateVersion,
      payload: input.payload,
    });
    payloadBytes += Buffer.byteLength(body);
    events.push({ id: input.id!, type: input.type, body });
    // Every Token Factory unit counts one base unit per unit (base_per_unit 1).
    const chain = `${scope.organizationId}:${scope.projectId}:${occurredAt.toISOString().slice(0, 7)}-01`;
    exact.set(chain, (exact.get(chain) ?? 0n) + quantity * picoOf(priceOf(plan, unit, 'model', resourceId)));
  }
  // Floor: exact sums are never negative here.
  const chains = [...exact].map(([chain, pico]): [string, string] => [chain, (pico / PICO).toString()]);
  return { events, chains, payloadBytes: Math.round(payloadBytes / plan.events) };
}

/**
 * Publishes every event once, `plan.publishers` connections each taking
 * every publishers-th event with `plan.window` acks awaited at a time,
 * timed from the first publish to the last ack.
 */
async function publishAll(connections: NatsConnection[], plan: UsagePublishPlan, events: readonly BuiltEvent[], label: string, subjectPrefix: string): Promise<PublishRun> {
  const clients: JetStreamClient[] = connections.map((nc) => jetstream(nc, { timeout: ACK_TIMEOUT_MS }));
  const subjects = new Map<string, string>();
  const subjectOf = (type: string) => {
    let subject = subjects.get(type);
    if (subject === undefined) subjects.set(type, (subject = prefixSubject(type, subjectPrefix)));
    return subject;
  };
  const acksMs: number[] = [];
  let retries = 0;
  let failed = 0;
  let duplicates = 0;
  const cpu = process.cpuUsage();
  const firstMs = wallMs();
  await Promise.all(
    clients.flatMap((js, publisher) => {
      let next = publisher;
      const lane = async () => {
        while (next < events.length) {
          const event = events[next]!;
          next += clients.length;
          for (let attempt = 1; ; attempt += 1) {
            const t0 = performance.now();
            try {
              const ack = await js.publish(subjectOf(event.type), event.body, { msgID: event.id });
              acksMs.push(performance.now() - t0);
              if (ack.duplicate) duplicates += 1;
              break;
            } catch {
              if (attempt >= PUBLISH_TRIES) {
                failed += 1;
                break;
              }
              retries += 1;
            }
          }
        }
      };
      return Array.from({ length: plan.window }, lane);
    }),
  );
  const lastMs = wallMs();
  const used = process.cpuUsage(cpu);
  acksMs.sort((a, b) => a - b);
  return {
    label,
    events: events.length,
    acked: acksMs.length,
    failed,
    retries,
    duplicates,
    firstMs,
    lastMs,
    ackP50Ms: percentile(acksMs, 50),
    ackP99Ms: percentile(acksMs, 99),
    cpuMs: (used.user + used.system) / 1000,
  };
}

const first = await nextCommand();
if (first.kind !== 'plan') throw new Error(`expected the plan first, got ${first.kind}`);
const plan = first.plan;
try {
  const built = Date.now();
  const { events, chains, payloadBytes } = buildEvents(plan);
  const connections: NatsConnection[] = [];
  for (let i = 0; i < plan.publishers; i += 1) connections.push(await connect({ servers: plan.natsUrl, name: `aif-bench-usage-publisher-${i}` }));
  send({ kind: 'ready', chains, payloadBytes, buildMs: Date.now() - built });
  for (let command = await nextCommand(); command.kind !== 'exit'; command = await nextCommand()) {
    if (command.kind !== 'publish') throw new Error(`unexpected command ${command.kind}`);
    send({ kind: 'published', run: await publishAll(connections, plan, events, command.label, command.subjectPrefix) });
  }
  await Promise.all(connections.map((nc) => nc.close()));
} catch (error) {
  send({ kind: 'failed', message: (error as Error).stack ?? String(error) });
}
process.disconnect?.();
