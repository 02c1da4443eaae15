import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadConfigOrExit } from '@aifactory/config';
import { bootstrapDatabase, migrate, migrationTargets, SUBGRAPHS, withDatabase } from '@aifactory/db-tools';
import { startJwksServer } from '@aifactory/dev-identity';
import { createLogger } from '@aifactory/logging';
import { devConfigSchema, layoutOf } from './dev-config.js';
import { ensureDevKeys } from './dev-keys.js';
import { DEV_DIR, REPO_ROOT } from './paths.js';
import { runDevSeed } from './seed.js';
import { SUBGRAPH_STARTERS } from './subgraphs.js';
import { superviseServices, type ServiceSpec } from './supervisor.js';
import { gatewayEnvironment, subgraphEnvironment, type PlatformWiring } from './wiring.js';

// The second half of `npm run up` (scripts/up.sh installs, builds and checks
// the servers first): database, keys, seed, then every service.
const config = loadConfigOrExit(devConfigSchema, 'up');
const logger = createLogger({ service: 'up', level: config.LOG_LEVEL });
const layout = layoutOf(config);

await bootstrapDatabase({ ...layout, subgraphs: SUBGRAPHS });
await migrate({
  databaseUrl: withDatabase(layout.adminUrl, layout.database),
  targets: migrationTargets(layout),
  lockWaitMs: 60_000,
  lockTimeoutMs: 10_000,
  logger,
});
const keys = await ensureDevKeys();
const seeded = await runDevSeed(layout);
logger.info({ organizationId: seeded.organizationId, projectId: seeded.projectId }, 'demo organization ready');

const idp = await startJwksServer([keys.assertionKey], config.DEV_IDP_PORT);
const wiring: PlatformWiring = {
  layout,
  poolSize: config.DB_POOL_SIZE,
  internalPrivateKeyFile: keys.internalPrivateKeyFile,
  internalPublicKeyFiles: [keys.internalPublicKeyFile],
  jwksUrl: idp.url,
  issuer: config.DEV_IDP_ISSUER,
  audience: config.DEV_IDP_AUDIENCE,
  roleGroups: config.PLATFORM_ROLE_GROUPS,
  logLevel: config.LOG_LEVEL,
  gatewayOverrides: {
    RATE_LIMITS: JSON.stringify({
      default: { limit: config.DEV_RATE_LIMIT_PER_MINUTE, windowSeconds: 60 },
      webhooks: { limit: config.DEV_RATE_LIMIT_PER_MINUTE, windowSeconds: 60 },
    }),
  },
};
const subgraphUrls: Record<string, string> = {};
const services: ServiceSpec[] = SUBGRAPH_STARTERS.map(({ name, entry }, index) => {
  const port = config.SUBGRAPH_BASE_PORT + index;
  subgraphUrls[name] = `http://127.0.0.1:${port}/graphql`;
  return { name, entry, env: subgraphEnvironment(wiring, name, port) };
});
services.push({ name: 'gateway', entry: 'gateway/dist/main.js', env: gatewayEnvironment(wiring, config.GATEWAY_PORT, subgraphUrls) });

let shuttingDown = false;
const shutdown = async (code: number) => {
  if (shuttingDown) return;
  shuttingDown = true;
  await supervisor.stop();
  await idp.close();
  process.exit(code);
};
const supervisor = superviseServices(services, REPO_ROOT, (reason) => {
  process.stderr.write(`up: ${reason}; stopping everything\n`);
  void shutdown(1);
});
process.once('SIGINT', () => void shutdown(0));
process.once('SIGTERM', () => void shutdown(0));

const gatewayUrl = `http://127.0.0.1:${config.GATEWAY_PORT}`;
const deadline = Date.now() + 60_000;
while (!shuttingDown) {
  const ready = await fetch(`${gatewayUrl}/readyz`).then((res) => res.ok).catch(() => false);
  if (ready) break;
  if (Date.now() > deadline) {
    process.stderr.write('up: the gateway did not become ready within 60 s\n');
    await shutdown(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 250));
}

const runDir = path.join(DEV_DIR, 'run');
await mkdir(runDir, { recursive: true });
await writeFile(path.join(runDir, 'gateway.pid'), String(supervisor.pidOf('gateway') ?? ''));
const query = JSON.stringify({ query: '{ organizations { name slug departments { name projects { name } } account { kind currency } } }' });
process.stdout.write(`
AI Factory is up.
  gateway:   ${gatewayUrl}/graphql
  dev IdP:   ${idp.url}
  demo org:  ${seeded.organizationId}

Try it (a platform admin's dev assertion, made by npm run dev:token):
  curl -s ${gatewayUrl}/graphql -H 'content-type: application/json' \\
    -H "x-pomerium-jwt-assertion: $(npm run -s dev:token -- --email ${config.DEV_ADMIN_EMAIL} --role platform_admin)" \\
    -d '${query}'

Ctrl-C stops everything.
`);
