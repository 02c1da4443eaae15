import { readFile } from 'node:fs/promises';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';

// node tools/devstack/dist/bench/plain-apollo-main.js <supergraph file> <port>
// @apollo/gateway as its documentation sets it up, the baseline of the
// gateway comparison: no auth, no limits, default subgraph fetcher. Only the
// landing page is off, as it is in the other two.
const [supergraphFile = '', portArgument = ''] = process.argv.slice(2);
const port = Number(portArgument);
if (!supergraphFile || !Number.isInteger(port) || port <= 0 || port > 65_535) {
  process.stderr.write('usage: plain-apollo-main.js <supergraph file> <port>\n');
  process.exit(2);
}
const server = new ApolloServer({
  gateway: new ApolloGateway({ supergraphSdl: await readFile(supergraphFile, 'utf8') }),
  plugins: [ApolloServerPluginLandingPageDisabled()],
});
await startStandaloneServer(server, { listen: { port, host: '127.0.0.1' } });
