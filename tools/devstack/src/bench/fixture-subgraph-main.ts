import { isFixtureSubgraphName, serveFixtureSubgraph } from './fixture-subgraphs.js';

// node tools/devstack/dist/bench/fixture-subgraph-main.js <catalog|inventory> <port>
// A process of its own, so its CPU is charged to no gateway and it never
// competes with the load generator's event loop.
const [name = '', portArgument = ''] = process.argv.slice(2);
const port = Number(portArgument);
if (!isFixtureSubgraphName(name) || !Number.isInteger(port) || port <= 0 || port > 65_535) {
  process.stderr.write('usage: fixture-subgraph-main.js <catalog|inventory> <port>\n');
  process.exit(2);
}
const { server } = await serveFixtureSubgraph(name, port);
const stop = () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
