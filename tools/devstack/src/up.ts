import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadConfigOrExit } from '@aifactory/config';
import { bootstrapDatabase, migrate, migrationTargets, SUBGRAPHS, withDatabase } from '@aifactory/db-tools';
import { startJwksServer } from '@aifactory/dev-identity';
import { createLogger } from '@aifactory/logging';
import { devConfigSchema, layoutOf } from './dev-config.js';
import { ensureDevKeys } from './dev-keys.js';
import {
  DEV_NATS_STORE_DIR,
  devNatsArguments,
  ensureNatsPasswords,
  NATS_SERVER_BINARY,
  NATS_SERVER_CONFIG,
  natsPasswordEnvironment,
  portAnswers,
} from './dev-nats.js';
import { startDevStripe, stripeWebhookUrl } from './dev-stripe.js';
import { DEV_DIR, REPO_ROOT } from './paths.js';
import { runDevSeed } from './seed.js';
import { SUBGRAPH_STARTERS } from './subgraphs.js';
import { superviseServices, type ServiceSpec, type Supervisor } from './supervisor.js';
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
// The demo org's org_admin is the person the printed curl's dev assertion names.
const seeded = await runDevSeed(layout, {
  admin: { issuer: config.DEV_IDP_ISSUER, email: config.DEV_ADMIN_EMAIL },
  serviceCredentialFiles: keys.serviceCredentialFiles,
});
logger.info({ organizationId: seeded.organizationId, projectId: seeded.projectId }, 'demo organization ready');

let natsSupervisor: Supervisor | undefined;
let supervisor: Supervisor | undefined;
let closeIdp: (() => Promise<void>) | undefined;
let closeStripe: (() => Promise<void>) | undefined;
/** Set once shutdown began; it ends with process.exit, so awaiting it stops whatever awaits. */
let stopping: Promise<void> | undefined;
// Services first, so each drains its NATS connection while its own NATS still runs.
const shutdown = (code: number): Promise<void> =>
  (stopping ??= (async () => {
    await supervisor?.stop();
    await natsSupervisor?.stop();
    await closeStripe?.();
    await closeIdp?.();
    process.exit(code);
  })());
const giveUp = (reason: string) => {
  process.stderr.write(`up: ${reason}; stopping everything\n`);
  void shutdown(1);
};
process.once('SIGINT', () => void shutdown(0));
process.once('SIGTERM', () => void shutdown(0));

// DEV_NATS_PERMISSIONS: a nats-server of the stack's own with the shipped
// per-service users instead of the shared, open one on 4222.
let nats: PlatformWiring['nats'];
if (config.DEV_NATS_PERMISSIONS) {
  if (!existsSync(NATS_SERVER_BINARY)) {
    process.stderr.write(`up: DEV_NATS_PERMISSIONS needs ${NATS_SERVER_BINARY} (Debian: apt-get install nats-server)\n`);
    process.exit(1);
  }
  if (await portAnswers(config.DEV_NATS_PORT)) {
    process.stderr.write(`up: port ${config.DEV_NATS_PORT} is taken (a nats-server left from an earlier run?); stop it or set DEV_NATS_PORT\n`);
    process.exit(1);
  }
  const passwords = await ensureNatsPasswords();
  await mkdir(DEV_NATS_STORE_DIR, { recursive: true });
  natsSupervisor = superviseServices(
    [
      {
        name: 'nats',
        program: NATS_SERVER_BINARY,
        args: devNatsArguments(config.DEV_NATS_PORT),
        env: natsPasswordEnvironment(passwords),
        ownProcessGroup: true,
      },
    ],
    REPO_ROOT,
    giveUp,
  );
  const natsDeadline = Date.now() + 15_000;
  while (!(await portAnswers(config.DEV_NATS_PORT))) {
    if (stopping) await stopping;
    if (Date.now() > natsDeadline) {
      process.stderr.write(`up: nats-server did not answer on port ${config.DEV_NATS_PORT} within 15 s\n`);
      await shutdown(1);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  nats = { url: `nats://127.0.0.1:${config.DEV_NATS_PORT}`, passwords };
  logger.info({ url: nats.url, config: path.relative(REPO_ROOT, NATS_SERVER_CONFIG) }, 'NATS with per-service permissions ready');
}

const idp = await startJwksServer([keys.assertionKey], config.DEV_IDP_PORT);
closeIdp = () => idp.close();
if (await portAnswers(config.DEV_STRIPE_PORT)) {
  process.stderr.write(`up: port ${config.DEV_STRIPE_PORT} is taken (a fake Stripe left from an earlier run?); stop it or set DEV_STRIPE_PORT\n`);
  await shutdown(1);
}
const gatewayUrl = `http://127.0.0.1:${config.GATEWAY_PORT}`;
// Billing's Stripe is the local fake, with the kept dev keys; its events go to billing through the gateway, as Stripe's would.
const stripe = await startDevStripe(
  { apiKeyFile: keys.stripeApiKeyFile, webhookSecretFile: keys.stripeWebhookSecretFile },
  config.DEV_STRIPE_PORT,
  stripeWebhookUrl(gatewayUrl),
  path.join(DEV_DIR, 'stripe-fake.json'),
);
closeStripe = () => stripe.close();
const wiring: PlatformWiring = {
  layout,
  poolSize: config.DB_POOL_SIZE,
  internalPrivateKeyFile: keys.internalPrivateKeyFile,
  internalPublicKeyFiles: [keys.internalPublicKeyFile],
  apiKeyPepperFile: keys.apiKeyPepperFile,
  serviceCredentialFiles: keys.serviceCredentialFiles,
  serviceUrls: Object.fromEntries(SUBGRAPH_STARTERS.map(({ name }, index) => [name, `http://127.0.0.1:${config.SUBGRAPH_BASE_PORT + index}`])),
  jwksUrl: idp.url,
  issuer: config.DEV_IDP_ISSUER,
  audience: config.DEV_IDP_AUDIENCE,
  roleGroups: config.PLATFORM_ROLE_GROUPS,
  logLevel: config.LOG_LEVEL,
  ...(nats ? { nats } : {}),
  stripe: { apiKeyFile: keys.stripeApiKeyFile, webhookSecretFile: keys.stripeWebhookSecretFile, apiUrl: stripe.url },
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
if (stopping) await stopping;
const running = superviseServices(services, REPO_ROOT, giveUp);
supervisor = running;

const deadline = Date.now() + 60_000;
for (;;) {
  if (stopping) await stopping;
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
await writeFile(path.join(runDir, 'gateway.pid'), String(running.pidOf('gateway') ?? ''));
const query = JSON.stringify({
  query:
    '{ organizations { edges { node { name slug myRoles departments { edges { node { name projects { edges { node { name } } } } } } account { kind currency } } } } }',
});
process.stdout.write(`
AI Factory is up.
  gateway:   ${gatewayUrl}/graphql
  dev IdP:   ${idp.url}
  Stripe:    ${stripe.url} (the local fake; a checkout session's url is its payment page)${nats ? `\n  NATS:      ${nats.url} (per-service users, ${path.relative(REPO_ROOT, NATS_SERVER_CONFIG)})` : ''}
  demo org:  ${seeded.organizationId}

Try it as the demo org's admin (org_admin through the seed; npm run dev:token makes their dev assertion):
  curl -s ${gatewayUrl}/graphql -H 'content-type: application/json' \\
    -H "x-pomerium-jwt-assertion: $(npm run -s dev:token -- --email ${config.DEV_ADMIN_EMAIL})" \\
    -d '${query}'

Ctrl-C stops everything.
`);
