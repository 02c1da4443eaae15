import { readdirSync, readFileSync } from 'node:fs';
import { parse } from 'graphql';
import { systemClock, type Clock } from '@aifactory/clock';
import type { Logger } from '@aifactory/logging';
import { PepperRing } from '@aifactory/service-auth';
import { createPool, serveSubgraphWithDatabase, type StartedService } from '@aifactory/subgraph-kit';
import type { IamConfig } from './config.js';
import { openIamDatabase } from './data/database.js';
import { apiKeyUsageRoute } from './http/api-key-usage-route.js';
import { signInRoute } from './http/sign-in-route.js';
import { resolvers, type IamContext } from './resolvers/index.js';
import { createIamServices } from './services.js';
import { startAccessReadModel } from './workers/access-read-model.js';

export const SUBGRAPH_NAME = 'iam';
export { iamConfigSchema } from './config.js';

const SCHEMA_DIR = new URL('../src/schema/', import.meta.url);

/** Every file of src/schema, in name order (00-schema.graphql, with the `@link` header, first). */
export const typeDefsSource = readdirSync(SCHEMA_DIR)
  .filter((file) => file.endsWith('.graphql'))
  .sort()
  .map((file) => readFileSync(new URL(file, SCHEMA_DIR), 'utf8'))
  .join('\n');

export interface IamStartOptions {
  /** Tests: the time the access read model's heartbeat reports. */
  clock?: Clock;
}

export async function startIamSubgraph(config: IamConfig, logger: Logger, options: IamStartOptions = {}): Promise<StartedService> {
  // Read before anything opens: a missing or malformed pepper file stops the start with its name.
  const pepper = await PepperRing.load(config.API_KEY_PEPPER_FILE, {
    onReloadError: (error) => logger.warn({ err: error, file: config.API_KEY_PEPPER_FILE }, 'API key pepper file not re-read; the versions read before stay in use'),
  });
  const database = openIamDatabase(config);
  const services = createIamServices(database, config, pepper);
  const service = await serveSubgraphWithDatabase<IamContext>(
    {
      name: SUBGRAPH_NAME,
      typeDefs: parse(typeDefsSource),
      resolvers,
      extendContext: (base) => ({ ...base, ...services }),
      httpRoutes: [signInRoute(services.users), apiKeyUsageRoute(services.apiKeys)],
      // iam owns the access read model: it must be in the bucket before the kit waits for its catalog.
      onConnected: async ({ nats, logger: log, metrics, subjectPrefix }) => {
        services.freshPolicy.attachMetrics(metrics);
        // The projection's consumer keeps a transaction open on its pool while it reads users through Prisma's:
        // on one shared pool of size 1 it would wait for itself. Its own single connection keeps them apart.
        const projectionPool = createPool({
          url: config.DATABASE_URL,
          max: 1,
          applicationName: 'iam-projection',
          schema: database.schema,
        });
        const readModel = await startAccessReadModel({
          nc: nats,
          subjectPrefix,
          logger: log,
          metrics,
          clock: options.clock ?? systemClock,
          heartbeatMs: config.ACCESS_HEARTBEAT_MS,
          pool: projectionPool,
          schema: database.schema,
          users: services.accessStore,
          apiKeys: services.apiKeyStore,
          serviceIdentities: services.serviceIdentityStore,
          catalog: () => services.registries.catalogSnapshot(),
          policies: { all: () => services.policy.policySnapshots(), one: (organizationId) => services.policy.policySnapshot(organizationId) },
        }).catch(async (error: unknown) => {
          await projectionPool.end();
          throw error;
        });
        services.credentialPublication.attach(readModel.credentials);
        return {
          stop: async () => {
            services.credentialPublication.detach();
            await readModel.stop();
            await projectionPool.end();
          },
        };
      },
    },
    database,
    config,
    logger,
  ).catch((error: unknown) => {
    pepper.close();
    throw error;
  });
  return {
    ...service,
    close: async () => {
      await service.close();
      pepper.close();
    },
  };
}
