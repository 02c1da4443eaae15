import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { organizationUpdatedV1, type EventEnvelope } from '@aifactory/contracts';
import type { FanoutCommand, FanoutPlan, FanoutReply, RoundReceipts } from './fanout-protocol.js';

// The subscribers of `npm run bench -- events`, in a process of their own so
// the 1,000 clients' parsing does not share an event loop with the gateway
// they measure. It also publishes the events, so publish and receipt times
// come from one clock. Driven over the IPC channel by subscription-fanout.ts.

const ASSERTION_HEADER = 'x-pomerium-jwt-assertion';

function send(reply: FanoutReply): void {
  process.send?.(reply);
}

// Commands are queued as they arrive, so none is lost while a round is busy.
const inbox: FanoutCommand[] = [];
let delivered: (() => void) | undefined;
process.on('message', (message) => {
  inbox.push(message as FanoutCommand);
  delivered?.();
});

async function nextCommand(): Promise<FanoutCommand> {
  while (inbox.length === 0) await new Promise<void>((resolve) => (delivered = resolve));
  return inbox.shift()!;
}

// Orphaned (the benchmark killed outright), it goes too, instead of holding 1,000 sockets open.
process.once('disconnect', () => process.exit(0));

send({ kind: 'ready' });
const first = await nextCommand();
if (first.kind !== 'plan') throw new Error(`expected the plan first, got ${first.kind}`);
const { wsUrl, assertion, organizationId, subscribers, natsUrl, subject }: FanoutPlan = first.plan;

class WithAssertion extends WebSocket {
  constructor(address: string, protocols?: string | string[]) {
    // Pomerium puts its assertion on the upgrade request; the gateway checks it there.
    super(address, protocols, { headers: { [ASSERTION_HEADER]: assertion } });
  }
}

let connected = 0;
let closed = 0;
const closeReasons = new Map<string, number>();
const clients: Client[] = Array.from({ length: subscribers }, () =>
  createClient({
    url: wsUrl,
    webSocketImpl: WithAssertion,
    retryAttempts: 0,
    lazy: false,
    on: {
      connected: () => {
        connected += 1;
      },
      closed: (event) => {
        closed += 1;
        const { code, reason } = event as { code?: number; reason?: unknown };
        const key = `${code ?? '?'} ${String(reason ?? '')}`.trim();
        closeReasons.set(key, (closeReasons.get(key) ?? 0) + 1);
      },
    },
  }),
);

const connectDeadline = Date.now() + 60_000;
while (connected + closed < subscribers && Date.now() < connectDeadline) await new Promise((resolve) => setTimeout(resolve, 20));
send({ kind: 'connected', connected, failed: subscribers - connected, closeReasons: Object.fromEntries(closeReasons) });

const nc = await connect({ servers: natsUrl, name: 'aif-bench-fanout-publisher' });
const js = jetstream(nc);

function envelope(name: string, aggregateVersion: number): EventEnvelope {
  return {
    id: randomUUID(),
    type: organizationUpdatedV1.type,
    version: 1,
    occurredAt: new Date().toISOString(),
    correlationId: `bench-fanout-${randomUUID()}`,
    traceparent: null,
    actor: { type: 'user', id: 'bench' },
    organizationId,
    departmentId: null,
    projectId: null,
    registryVersions: {},
    aggregateType: 'organization',
    aggregateId: organizationId,
    aggregateVersion,
    payload: { id: organizationId, slug: 'bench', name, billingCurrency: 'USD', status: 'active' },
  };
}

let aggregateVersion = 1_000;

async function runRound(round: Extract<FanoutCommand, { kind: 'subscribe' }>): Promise<void> {
  const { events, intervalMs, settleMs, query, expectAccount } = round;
  const eventName = (index: number) => `bench ${round.round} event ${index}`;
  const warmUpName = `bench ${round.round} warm-up`;
  let warmedUp = 0;
  const indexOf = new Map(Array.from({ length: events }, (_, index) => [eventName(index), index]));
  // -1: not received.
  const receivedAt = Array.from({ length: subscribers }, () => new Array<number>(events).fill(-1));
  let duplicates = 0;
  let foreign = 0;
  let received = 0;
  const errors = new Map<string, number>();
  const noteError = (what: string) => errors.set(what, (errors.get(what) ?? 0) + 1);

  const unsubscribes = clients.map((client, subscriber) =>
    client.subscribe<{ organizationUpdated: { name: string; account?: { currency: string } | null } }>(
      { query, variables: { id: organizationId } },
      {
        next: (result) => {
          const at = performance.now();
          if (result.errors?.length) {
            noteError(`result error: ${String(result.errors[0]?.message)}`);
            return;
          }
          const name = result.data?.organizationUpdated.name ?? '';
          if (name === warmUpName) {
            warmedUp += 1;
            return;
          }
          const index = indexOf.get(name);
          if (index === undefined) {
            foreign += 1;
            return;
          }
          if (expectAccount && result.data?.organizationUpdated.account?.currency !== 'USD') noteError('account.currency missing');
          const row = receivedAt[subscriber]!;
          if (row[index] !== -1) {
            duplicates += 1;
            return;
          }
          row[index] = at;
          received += 1;
        },
        error: (error) => noteError(`subscription error: ${error instanceof Error ? error.message : JSON.stringify(error).slice(0, 200)}`),
        complete: () => undefined,
      },
    ),
  );
  send({ kind: 'subscribed', round: round.round });
  const go = await nextCommand();
  if (go.kind !== 'publish') throw new Error(`expected publish, got ${go.kind}`);

  // One untimed event first: the gateway's first delivery on a new feed pays for plans, code paths and subgraph connections.
  aggregateVersion += 1;
  const warmUp = envelope(warmUpName, aggregateVersion);
  await js.publish(subject, JSON.stringify(warmUp), { msgID: warmUp.id });
  const warmUpDeadline = performance.now() + settleMs;
  while (warmedUp < subscribers && performance.now() < warmUpDeadline) await new Promise((resolve) => setTimeout(resolve, 10));
  send({ kind: 'warmed-up', received: warmedUp });

  const publishedAt: number[] = [];
  const started = performance.now();
  for (let index = 0; index < events; index += 1) {
    // Spaced from the start, so a slow publish does not stretch the schedule.
    const due = started + index * intervalMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    aggregateVersion += 1;
    const event = envelope(eventName(index), aggregateVersion);
    publishedAt.push(performance.now());
    await js.publish(subject, JSON.stringify(event), { msgID: event.id });
  }
  const expected = subscribers * events;
  const deadline = performance.now() + settleMs;
  while (received < expected && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  for (const unsubscribe of unsubscribes) unsubscribe();

  const receipts: RoundReceipts = {
    round: round.round,
    publishedAt,
    receivedAt,
    duplicates,
    foreign,
    errors: Object.fromEntries(errors),
    closedSoFar: closed,
  };
  send({ kind: 'round', receipts });
}

for (;;) {
  const command = await nextCommand();
  if (command.kind === 'subscribe') {
    await runRound(command);
  } else if (command.kind === 'exit') {
    break;
  }
}
await Promise.all(clients.map((client) => client.dispose()));
await nc.close();
process.exit(0);
