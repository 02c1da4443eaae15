// npm run bench [-- --duration 10 --concurrency 16]
//   the platform gateway against direct subgraph calls, on a running dev stack (cli.ts)
// npm run bench -- gateways [--duration 12 --warmup 2 --concurrency 16 --rounds 4]
//   the platform gateway against plain @apollo/gateway and Hive Gateway, on
//   fixture subgraphs the run starts itself; needs no dev stack
// npm run bench -- events [--events 5000 --writers 8 --rounds 3 --subscribers 1000 --fanout-events 20
//                           --account-events 5 --interval 200 --only relay|fanout]
//   the outbox relay against raw JetStream publishes, then subscription fan-out
//   through the gateway; private databases, stream prefixes and Redis keys of its own
// npm run bench -- authz [--duration 8 --concurrency 8 --rounds 4 --changes 20 --memberships 100000
//                          --only overhead|propagation|coldload]
//   guard and grant resolution on vs off through the gateway, membership-change
//   propagation across two gateways, can() cost, and the read model's cold load
// npm run bench -- apikeys [--duration 8 --concurrency 8 --rounds 4 --revokes 100 --keys 100000
//                            --only overhead|propagation|coldload]
//   a request by API key against the same request with no credential, revocation
//   propagation across two gateways, one key check's cost, and the key read model's cold load
// npm run bench -- ledger [--duration 8 --concurrency 8 --rounds 4 --batch 500 --organizations 64]
//   ledger postings (one per transaction and batched) and reservations against
//   plain INSERTs of the same rows; a private database of its own
// npm run bench -- usage [--events 100000 --publishers 4 --window 128 --organizations 20 --batch 1000
//                          --rating-concurrency 2 --pool 10]
//   usage events from JetStream publish to posted ledger (ingestion + BullMQ rating) against raw
//   JetStream publishes of the same events, with ingest and rating lags and a zero-loss check;
//   a private database, stream prefixes and Redis keys of its own
// npm run bench -- webhooks [--sessions 400 --organizations 20 --deliveries 2000 --disputes 20 --refunds 20
//                             --concurrency 16 --probe 2 --duration 6 --rounds 4 --pool 10]
//   Stripe webhooks through the gateway in a burst (completions, disputes, refunds, re-deliveries) from the
//   platform's fake Stripe: ack times, processing lag against seed 002's 60 s, throughput, a zero-loss and
//   no-double-credit check, and a fresh webhook against a plain GraphQL request side by side; a private
//   database, stream prefix and Redis keys of its own
// Each command is loaded on its own, so one needs only what it uses built.
const [command, ...rest] = process.argv.slice(2);
if (command === 'gateways') {
  process.exitCode = await (await import('./gateway-comparison.js')).runGatewayComparison(rest);
} else if (command === 'authz') {
  process.exitCode = await (await import('./authz-bench.js')).runAuthzBench(rest);
} else if (command === 'apikeys') {
  process.exitCode = await (await import('./apikeys-bench.js')).runApiKeysBench(rest);
} else if (command === 'ledger') {
  process.exitCode = await (await import('./ledger-bench.js')).runLedgerBench(rest);
} else if (command === 'usage') {
  process.exitCode = await (await import('./usage-bench.js')).runUsageBench(rest);
} else if (command === 'webhooks') {
  process.exitCode = await (await import('./webhook-bench.js')).runWebhookBench(rest);
} else if (command === 'events') {
  process.exitCode = await (await import('./event-bench.js')).runEventBench(rest);
} else {
  await import('./cli.js');
}
