import { runGatewayComparison } from './gateway-comparison.js';

// npm run bench [-- --duration 10 --concurrency 16]
//   the platform gateway against direct subgraph calls, on a running dev stack (cli.ts)
// npm run bench -- gateways [--duration 12 --warmup 2 --concurrency 16 --rounds 4]
//   the platform gateway against plain @apollo/gateway and Hive Gateway, on
//   fixture subgraphs the run starts itself; needs no dev stack
const [command, ...rest] = process.argv.slice(2);
if (command === 'gateways') {
  process.exitCode = await runGatewayComparison(rest);
} else {
  await import('./cli.js');
}
