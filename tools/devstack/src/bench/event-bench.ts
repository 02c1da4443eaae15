import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '@aifactory/logging';
import { fanoutComplete, measureSubscriptionFanout, printSubscriptionFanout } from './subscription-fanout.js';
import { measureRelayThroughput, printRelayThroughput } from './relay-throughput.js';
import { inBenchWorkspace } from './bench-run.js';

const USAGE =
  'usage: npm run bench -- events [--events 5000] [--writers 8] [--rounds 3] [--subscribers 1000] [--fanout-events 20] [--account-events 5] [--interval 200] [--only relay|fanout]\n';

function positiveInt(value: string | undefined, zeroAllowed = false): number | undefined {
  const parsed = Number(value);
  return Number.isInteger(parsed) && (parsed > 0 || (zeroAllowed && parsed === 0)) ? parsed : undefined;
}

/**
 * `npm run bench -- events`: the outbox relay against raw JetStream publishes,
 * then subscription fan-out through the gateway, in one run. Needs the shared
 * Postgres, Redis and NATS, and touches only what it creates there. Returns
 * the exit code: 1 when events went missing or a part failed.
 */
export async function runEventBench(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      events: { type: 'string', default: '5000' },
      writers: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '3' },
      subscribers: { type: 'string', default: '1000' },
      'fanout-events': { type: 'string', default: '20' },
      'account-events': { type: 'string', default: '5' },
      interval: { type: 'string', default: '200' },
      only: { type: 'string' },
    },
  });
  const events = positiveInt(values.events);
  const writers = positiveInt(values.writers);
  const rounds = positiveInt(values.rounds);
  const subscribers = positiveInt(values.subscribers);
  const fanoutEvents = positiveInt(values['fanout-events']);
  const accountEvents = positiveInt(values['account-events'], true);
  const intervalMs = positiveInt(values.interval);
  const only = values.only;
  if (!events || !writers || !rounds || !subscribers || !fanoutEvents || accountEvents === undefined || !intervalMs || (only !== undefined && only !== 'relay' && only !== 'fanout')) {
    process.stderr.write(USAGE);
    return 2;
  }

  return inBenchWorkspace('events', async (workDir, teardown) => {
    const relayLog = createWriteStream(path.join(workDir, 'relay.log'));
    const logger = createLogger({ service: 'bench-relay', level: 'warn', destination: relayLog });
    let complete = true;
    try {
      if (only !== 'fanout') {
        const relayOptions = { events, writers, rounds, logger, teardown };
        const relay = await measureRelayThroughput(relayOptions);
        printRelayThroughput(relay, relayOptions);
        complete &&= [relay.relayLive, relay.relayBacklog].every((path) => path.missing === 0 && path.duplicates === 0);
      }
      if (only !== 'relay') {
        const fanout = await measureSubscriptionFanout({ subscribers, events: fanoutEvents, intervalMs, accountEvents, workDir, teardown });
        printSubscriptionFanout(fanout);
        complete &&= fanoutComplete(fanout);
      }
    } finally {
      await new Promise<void>((resolve) => relayLog.end(() => resolve()));
    }
    if (complete) return 0;
    process.stderr.write(`bench: events went missing or arrived twice (logs in ${workDir})\n`);
    return 1;
  });
}
