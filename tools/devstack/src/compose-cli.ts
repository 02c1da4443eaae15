import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { composeSupergraph, readSupergraphConfig } from './compose.js';
import { SUPERGRAPH_CONFIG, SUPERGRAPH_FILE } from './paths.js';

// npm run compose            writes supergraph.graphql
// npm run compose -- --check fails when the committed file differs from a fresh composition
const { values } = parseArgs({ options: { check: { type: 'boolean', default: false } } });
const result = composeSupergraph(await readSupergraphConfig(SUPERGRAPH_CONFIG));
if (!result.ok) {
  process.stderr.write(`composition failed:\n${result.errors.map((error) => `  - ${error}`).join('\n')}\n`);
  process.exit(1);
}
if (values.check) {
  const committed = await readFile(SUPERGRAPH_FILE, 'utf8').catch(() => '');
  if (committed !== result.supergraphSdl) {
    process.stderr.write('supergraph.graphql differs from a fresh composition: run `npm run compose` and commit it\n');
    process.exit(1);
  }
  process.stdout.write('supergraph.graphql is up to date\n');
} else {
  await writeFile(SUPERGRAPH_FILE, result.supergraphSdl);
  process.stdout.write(`wrote ${SUPERGRAPH_FILE}\n`);
}
