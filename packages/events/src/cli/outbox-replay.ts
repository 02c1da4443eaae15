import { parseArgs } from 'node:util';
import { env, loadConfigOrExit, z } from '@aifactory/config';
import { createLogger } from '@aifactory/logging';
import pg from 'pg';
import { replayFailedEvents } from '../outbox-maintenance.js';
import { outboxTable } from '../outbox-table.js';

/**
 * `npm run outbox:replay -- --subgraph <name> [--id <event id>]`: puts a
 * subgraph's failed outbox events (or one of them) back to pending with
 * attempts 0, once whatever refused them is fixed. Connects like the db:*
 * commands, as the migrator.
 */
const configSchema = z.object({
  DATABASE_ADMIN_URL: env.url().default('postgresql://postgres@127.0.0.1:5432/postgres'),
  DATABASE_NAME: env.identifier().default('aifactory'),
  LOG_LEVEL: env.logLevel(),
});

const USAGE = 'usage: npm run outbox:replay -- --subgraph <name> [--id <event id>]\n';

const config = loadConfigOrExit(configSchema, 'outbox:replay');
const logger = createLogger({ service: 'outbox:replay', level: config.LOG_LEVEL });
const args = parsedArguments();
if (args === undefined) {
  process.stderr.write(USAGE);
  process.exitCode = 2;
} else {
  process.exitCode = await replay(args.subgraph, args.id);
}

function parsedArguments(): { subgraph: string; id: string | undefined } | undefined {
  try {
    const { values } = parseArgs({ options: { subgraph: { type: 'string' }, id: { type: 'string' } }, strict: true });
    const subgraph = env.identifier().safeParse(values.subgraph);
    const id = z.uuid().optional().safeParse(values.id);
    if (!subgraph.success || !id.success) return undefined;
    return { subgraph: subgraph.data, id: id.data };
  } catch {
    return undefined;
  }
}

async function replay(subgraph: string, id: string | undefined): Promise<number> {
  const url = new URL(config.DATABASE_ADMIN_URL);
  url.pathname = `/${config.DATABASE_NAME}`;
  const client = new pg.Client({ connectionString: url.toString(), application_name: 'outbox-replay' });
  try {
    await client.connect();
    const { rows } = await client.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [outboxTable(subgraph)]);
    if (!rows[0]?.exists) {
      process.stderr.write(`outbox:replay: schema ${subgraph} has no outbox_events table in ${config.DATABASE_NAME}\n`);
      return 1;
    }
    const requeued = await replayFailedEvents(client, subgraph, id === undefined ? {} : { id });
    logger.info({ subgraph, requeued: requeued.length, ids: requeued }, 'failed outbox events requeued');
    if (id !== undefined && requeued.length === 0) {
      process.stderr.write(`outbox:replay: no failed event ${id} in ${subgraph}\n`);
      return 1;
    }
    return 0;
  } catch (error) {
    logger.error({ err: error, subgraph }, 'outbox:replay failed');
    return 1;
  } finally {
    await client.end().catch(() => undefined);
  }
}
