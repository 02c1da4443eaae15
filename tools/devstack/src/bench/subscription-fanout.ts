import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { organizationUpdatedV1, prefixSubject } from '@aifactory/contracts';
import { TEST_NATS_URL } from '@aifactory/testing';
import { runDevSeed } from '../seed.js';
import type { FanoutCommand, FanoutReply, RoundReceipts } from './fanout-protocol.js';
import { ForkedWorker } from './forked-worker.js';
import { percentile } from './load.js';
import { processCpuMs } from './process-cpu.js';
import { BENCH_ADMIN_GROUP, startBenchPlatform } from './bench-platform.js';
import { progress, type Teardown } from './teardown.js';


export interface FanoutOptions {
  subscribers: number;
  /** Events per round, published `intervalMs` apart. */
  events: number;
  intervalMs: number;
  /** Events in the round that also selects `account { currency }` (billing); 0 skips it. */
  accountEvents: number;
  /** Where the platform's logs and the subscriber process's output go. */
  workDir: string;
  /** Receives what this part creates, to undo at its end or on Ctrl-C. */
  teardown: Teardown;
}

interface Round {
  name: string;
  selection: string;
  expectAccount: boolean;
  events: number;
}

export interface RoundResult {
  round: Round;
  /** Every (event, subscriber) pair that arrived: publish to client receipt. */
  latenciesMs: number[];
  /** Per event, until its last subscriber had it (NaN where one never did). */
  completeMs: number[];
  expected: number;
  delivered: number;
  /** Subscribers missing at least one event, and how many events each missed, first few. */
  subscribersWithMisses: number;
  missesByEvent: number[];
  duplicates: number;
  foreign: number;
  errors: Record<string, number>;
  closedSoFar: number;
  /** CPU of this process (subgraphs + gateway; the subscribers run elsewhere) over the round. */
  platformCpuMs: number;
}

export interface FanoutResult {
  subscribers: number;
  connected: number;
  connectFailures: Record<string, number>;
  intervalMs: number;
  rounds: RoundResult[];
}
async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(10);
  }
}

function startSubscriberProcess(workDir: string): ForkedWorker<FanoutCommand, FanoutReply> {
  return ForkedWorker.start('subscriber', fileURLToPath(new URL('./fanout-subscribers-main.js', import.meta.url)), path.join(workDir, 'subscribers.log'));
}

function summarize(round: Round, receipts: RoundReceipts, subscribers: number, platformCpuMs: number): RoundResult {
  const latenciesMs: number[] = [];
  const completeMs: number[] = [];
  const missesByEvent = new Array<number>(receipts.publishedAt.length).fill(0);
  let subscribersWithMisses = 0;
  receipts.publishedAt.forEach((publishedAt, event) => {
    let last = 0;
    for (const row of receipts.receivedAt) {
      const at = row[event]!;
      if (at < 0) {
        missesByEvent[event]! += 1;
        last = Number.NaN;
        continue;
      }
      latenciesMs.push(at - publishedAt);
      last = Math.max(last, at - publishedAt);
    }
    completeMs.push(last);
  });
  for (const row of receipts.receivedAt) if (row.some((at) => at < 0)) subscribersWithMisses += 1;
  return {
    round,
    latenciesMs,
    completeMs,
    expected: subscribers * round.events,
    delivered: latenciesMs.length,
    subscribersWithMisses,
    missesByEvent,
    duplicates: receipts.duplicates,
    foreign: receipts.foreign,
    errors: receipts.errors,
    closedSoFar: receipts.closedSoFar,
    platformCpuMs,
  };
}

/**
 * Part 2 of `npm run bench -- events`: the whole platform in this process on a
 * private database (seeded as the dev stack is), `subscribers` graphql-ws
 * clients in a process of their own subscribed through the gateway to one
 * organization's `organizationUpdated`, and events published to its prefixed
 * subject. Streams, Redis keys and the database are this run's and removed.
 */
export async function measureSubscriptionFanout(options: FanoutOptions): Promise<FanoutResult> {
  const { subscribers, events, intervalMs, accountEvents, workDir, teardown } = options;
  try {
    const { platform, db, eventSubjectPrefix, sign } = await startBenchPlatform({
      name: 'fan-out',
      workDir,
      teardown,
      poolSize: 2,
      // A subscriber is dropped once this many events wait for it; a round must never get there.
      gatewayOverrides: { SUBSCRIPTION_MAX_PENDING_EVENTS: String(Math.max(100, events + accountEvents + 10)) },
    });
    progress('fan-out: seeding');
    const seeded = await runDevSeed(db.layout, { eventSubjectPrefix });
    const assertion = await sign('bench-admin', [BENCH_ADMIN_GROUP]);

    progress(`fan-out: connecting ${subscribers} subscribers`);
    const subscriberProcess = startSubscriberProcess(workDir);
    teardown.add('stop the subscriber process', () => subscriberProcess.stop());
    await subscriberProcess.next('ready', 30_000);
    subscriberProcess.send({
      kind: 'plan',
      plan: {
        wsUrl: `${platform.gatewayUrl.replace(/^http/, 'ws')}/graphql`,
        assertion,
        organizationId: seeded.organizationId,
        subscribers,
        natsUrl: TEST_NATS_URL,
        subject: prefixSubject(organizationUpdatedV1.subject, eventSubjectPrefix),
      },
    });
    const connected = await subscriberProcess.next('connected', 90_000);

    const rounds: Round[] = [{ name: '{ id name }', selection: '{ id name }', expectAccount: false, events }];
    if (accountEvents > 0) {
      rounds.push({ name: '{ id name account { currency } }', selection: '{ id name account { currency } }', expectAccount: true, events: accountEvents });
    }
    const results: RoundResult[] = [];
    const feeds = platform.gateway.feeds;
    for (const round of rounds) {
      subscriberProcess.send({
        kind: 'subscribe',
        round: round.name,
        query: `subscription BenchWatch($id: ID!) { organizationUpdated(id: $id) ${round.selection} }`,
        expectAccount: round.expectAccount,
        events: round.events,
        intervalMs,
        settleMs: 15_000,
      });
      progress(`fan-out: round ${round.name}, ${round.events} events`);
      await subscriberProcess.next('subscribed', 30_000);
      // Nothing is published until the gateway has every subscription listening on its feed.
      await until(() => feeds.listeners >= connected.connected, 60_000, `${connected.connected} subscriptions on the gateway (${feeds.listeners} so far)`);
      subscriberProcess.send({ kind: 'publish' });
      const warmedUp = await subscriberProcess.next('warmed-up', 30_000);
      if (warmedUp.received < connected.connected) progress(`fan-out: only ${warmedUp.received} subscribers got the warm-up event`);
      const cpuBefore = processCpuMs(process.pid);
      const { receipts } = await subscriberProcess.next('round', round.events * intervalMs + 60_000);
      const platformCpuMs = processCpuMs(process.pid) - cpuBefore;
      results.push(summarize(round, receipts, subscribers, platformCpuMs));
      await until(() => feeds.listeners === 0, 30_000, 'the subscriptions of the round to end');
    }
    return { subscribers, connected: connected.connected, connectFailures: connected.closeReasons, intervalMs, rounds: results };
  } finally {
    progress('fan-out: stopping, removing streams, Redis keys and the database');
    await teardown.run();
    progress('fan-out: done');
  }
}

const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '-');

export function printSubscriptionFanout(result: FanoutResult): void {
  const out = process.stdout;
  out.write(
    `\n2. Subscription fan-out: the platform in this process (6 subgraphs + gateway, private database seeded as the dev stack), ` +
      `${result.subscribers} graphql-ws clients in a second process, each its own connection with the Pomerium assertion on the upgrade, ` +
      `all on one organization's organizationUpdated; per round one untimed warm-up event, then events published ${result.intervalMs} ms apart to the gateway's prefixed subject. ` +
      'Latency: just before the JetStream publish to the client\'s next() callback, one clock (the publisher is the subscriber process); ' +
      '"all have it": per event, until its last subscriber got it. Platform CPU: this process over the round; ' +
      `once it passes ${result.intervalMs} ms per event the gateway falls behind and the latencies are mostly queueing.\n`,
  );
  if (result.connected < result.subscribers) {
    out.write(`Only ${result.connected} of ${result.subscribers} clients connected: ${JSON.stringify(result.connectFailures)}\n`);
  }
  out.write(
    '\n| selection | events | deliveries | missed | dup | p50 ms | p99 ms | max ms | all have it p50 ms | all have it max ms | platform CPU µs/delivery | platform CPU ms/event |\n' +
      '|---|---|---|---|---|---|---|---|---|---|---|---|\n',
  );
  for (const round of result.rounds) {
    const sorted = [...round.latenciesMs].sort((a, b) => a - b);
    const complete = [...round.completeMs].sort((a, b) => a - b);
    out.write(
      `| ${round.round.name} | ${round.round.events} | ${round.delivered}/${round.expected} | ${round.expected - round.delivered} | ${round.duplicates} | ` +
        `${fmt(percentile(sorted, 50))} | ${fmt(percentile(sorted, 99))} | ${fmt(sorted.at(-1) ?? Number.NaN)} | ` +
        `${fmt(percentile(complete, 50))} | ${fmt(complete.at(-1) ?? Number.NaN)} | ${fmt((round.platformCpuMs * 1000) / Math.max(1, round.delivered), 0)} | ` +
        `${fmt(round.platformCpuMs / round.round.events, 0)} |\n`,
    );
  }
  for (const round of result.rounds) {
    const problems: string[] = [];
    if (round.delivered < round.expected) {
      problems.push(`${round.subscribersWithMisses} subscribers missed events; misses by event: ${round.missesByEvent.join(' ')}`);
    }
    if (round.foreign > 0) problems.push(`${round.foreign} results for events this round did not publish`);
    if (Object.keys(round.errors).length > 0) problems.push(`errors: ${JSON.stringify(round.errors)}`);
    if (round.closedSoFar > 0) problems.push(`${round.closedSoFar} client connections closed so far`);
    out.write(`${round.round.name}: ${problems.length === 0 ? `every subscriber got every event once` : problems.join('; ')}\n`);
  }
  const [plain, account] = result.rounds;
  if (plain && account) {
    const p50 = (round: RoundResult) => percentile([...round.latenciesMs].sort((a, b) => a - b), 50);
    const cpu = (round: RoundResult) => round.platformCpuMs / Math.max(1, round.delivered);
    out.write(`\nWith account { currency } (a billing fetch per subscriber per event) / without: p50 ${fmt(p50(account) / p50(plain), 2)}, platform CPU per delivery ${fmt(cpu(account) / cpu(plain), 2)}\n`);
  }
}

/** True when every subscriber got every event of every round exactly once, with no error. */
export function fanoutComplete(result: FanoutResult): boolean {
  return (
    result.connected === result.subscribers &&
    result.rounds.every((round) => round.delivered === round.expected && round.duplicates === 0 && Object.keys(round.errors).length === 0)
  );
}
