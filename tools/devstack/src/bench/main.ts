import { runEventBench } from './event-bench.js';
import { runGatewayComparison } from './gateway-comparison.js';

// npm run bench [-- --duration 10 --concurrency 16]
//   the platform gateway against direct subgraph calls, on a running dev stack (cli.ts)
// npm run bench -- gateways [--duration 12 --warmup 2 --concurrency 16 --rounds 4]
//   the platform gateway against plain @apollo/gateway and Hive Gateway, on
//   fixture subgraphs the run starts itself; needs no dev stack
// npm run bench -- events [--events 5000 --writers 8 --rounds 3 --subscribers 1000 --fanout-events 20
//                           --account-events 5 --interval 200 --only relay|fanout]
//   the outbox relay against raw JetStream publishes, then subscription fan-out
//   through the gateway; private databases, stream prefixes and Redis keys of its own
const [command, ...rest] = process.argv.slice(2);
if (command === 'gateways') {
  process.exitCode = await runGatewayComparison(rest);
} else if (command === 'events') {
  process.exitCode = await runEventBench(rest);
} else {
  await import('./cli.js');
}
