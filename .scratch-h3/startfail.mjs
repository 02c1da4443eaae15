import { parse } from 'graphql';
import { parseConfig } from '@aifactory/config';
import { createLogger } from '@aifactory/logging';
import { tempKeyDir, uniqueEventSubjectPrefix } from '@aifactory/testing';
import { startSubgraph, subgraphConfigSchema } from '@aifactory/subgraph-kit';
const keys = await tempKeyDir();
const files = await keys.ed25519('internal');
const config = parseConfig(subgraphConfigSchema, { PORT: '0', DATABASE_URL: 'postgresql://unused@127.0.0.1:5432/unused', INTERNAL_JWT_PUBLIC_KEY_FILES: files.publicKeyFile, EVENT_SUBJECT_PREFIX: process.argv[2] === 'prefix' ? uniqueEventSubjectPrefix() : '' });
const t = Date.now();
try {
  await startSubgraph({ name: 'slowpoke', typeDefs: parse('type Query { a: String }'), resolvers: {}, extendContext: (b) => b, ready: async () => {} }, config, createLogger({ service: 'x', level: 'debug' }));
} catch (e) { console.log('failed as expected:', e.message); }
await keys.cleanup();
console.log('start returned after', Date.now() - t);
process.on('exit', () => console.log('exited after', Date.now() - t));
setTimeout(() => { console.log('still alive at 8s; handles:', process._getActiveHandles().map((h) => h.constructor.name)); process.exit(3); }, 8000).unref();
