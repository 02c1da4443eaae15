import { readFileSync } from 'node:fs';
import { parse } from 'graphql';
import type { Logger } from '@aifactory/logging';
import { serveSubgraphWithDatabase, type StartedService } from '@aifactory/subgraph-kit';
import type { BillingConfig } from './config.js';

export { billingConfigSchema } from './config.js';
import { openBillingDatabase } from './data/database.js';
import { billingHttpRoutes } from './http/routes.js';
import { resolvers, type BillingContext } from './resolvers/index.js';
import { createBillingServices } from './services.js';
import { openStripeSecrets } from './stripe/stripe-secrets.js';
import { startBillingWorkers } from './workers/index.js';

export const SUBGRAPH_NAME = 'billing';
export const typeDefsSource = readFileSync(new URL('../src/schema.graphql', import.meta.url), 'utf8');

export async function startBillingSubgraph(config: BillingConfig, logger: Logger): Promise<StartedService> {
  // Read before anything opens: a missing secret file stops the start naming its variable. Then followed, so that
  // rolling the API key or the webhook secret needs no restart.
  const stripeSecrets = await openStripeSecrets(config, {
    onError: (error) => logger.warn({ err: error }, 'Stripe secret file not re-read; the secret read before stays in use'),
    onChange: (variable) => logger.info({ variable }, 'Stripe secret reloaded'),
  });
  const database = openBillingDatabase(config);
  const services = createBillingServices(database, config, logger, stripeSecrets.apiKey);
  const service = await serveSubgraphWithDatabase<BillingContext>(
    {
      name: SUBGRAPH_NAME,
      typeDefs: parse(typeDefsSource),
      resolvers,
      extendContext: (base) => ({ ...base, ...services }),
      httpRoutes: billingHttpRoutes(services, { webhookSecrets: stripeSecrets.webhookSecrets, toleranceSeconds: config.STRIPE_WEBHOOK_TOLERANCE_SECONDS }),
      onConnected: (connected) => startBillingWorkers(services, config, connected),
    },
    database,
    config,
    logger,
  ).catch((error: unknown) => {
    stripeSecrets.close();
    throw error;
  });
  return {
    ...service,
    close: async () => {
      await service.close();
      stripeSecrets.close();
    },
  };
}
