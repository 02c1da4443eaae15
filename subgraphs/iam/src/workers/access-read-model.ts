import type pg from 'pg';
import { AccessModelPublisher } from '@aifactory/access-model';
import type { CatalogSnapshot, PolicySnapshot } from '@aifactory/authz';
import type { Clock } from '@aifactory/clock';
import { prefixSubject, streamDeclarations, SUBJECT_FAMILIES } from '@aifactory/contracts';
import { ensureConsumer, type ConsumerDeclaration } from '@aifactory/event-consumers';
import { ensureStreams } from '@aifactory/events';
import type { Logger } from '@aifactory/logging';
import type { ServiceMetrics } from '@aifactory/telemetry';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { AccessStore, UserWithAccess } from '../data/access.js';
import type { ApiKeyStore, ApiKeyWithProject } from '../data/api-keys.js';
import type { ServiceIdentityStore } from '../data/service-identities.js';
import { apiKeyEntryOf, serviceIdentityEntryOf } from '../domain/credential-entries.js';
import type { CredentialPublisher } from '../domain/credential-publication.js';
import type { PageRequest } from '../domain/pagination.js';
import { principalEntryOf } from '../domain/principal-entries.js';
import { startAccessProjection, type AccessProjectionSources } from './access-projection.js';

export const ACCESS_PROJECTION_CONSUMER = 'iam-access-projection';

export interface AccessReadModelOptions {
  nc: NatsConnection;
  subjectPrefix: string;
  logger: Logger;
  metrics: ServiceMetrics;
  clock: Clock;
  heartbeatMs: number;
  /** The consumer tables (`processed_events`, ...) live in iam's own schema. */
  pool: pg.Pool;
  schema: string;
  users: AccessStore;
  /** API keys (hashes and pepper versions, never a secret) and service identities (public keys only). */
  apiKeys: Pick<ApiKeyStore, 'findMany' | 'page'>;
  serviceIdentities: Pick<ServiceIdentityStore, 'find' | 'all'>;
  catalog: () => Promise<CatalogSnapshot>;
  policies: AccessProjectionSources['policies'];
}

export interface RunningAccessReadModel {
  /** Settles when every user's and every API key's entry of the start-up rebuild is written. */
  rebuilt: Promise<void>;
  /**
   * Puts credential entries straight after their change commits (iam's
   * CredentialPublication), ahead of the projection. A failure is logged,
   * not thrown: the committed change is announced by its event anyway.
   */
  credentials: CredentialPublisher;
  stop(): Promise<void>;
}

const REBUILD_PAGE = 500;
const REBUILD_CONCURRENCY = 16;

/**
 * IAM's side of the access read model (ARCHITECTURE.md, Decisions:
 * Principal): the JetStream KV bucket the gateway and every subgraph
 * authorize from. At start it writes a full snapshot (catalog, policy
 * snapshots and service identities, then every user and API key, in the
 * background) with "put if newer", so it never moves a key back past a
 * delta written meanwhile; a heartbeat
 * tells readers how fresh the model is; and a durable consumer on IAM's own
 * events applies each change as it is committed.
 */
export async function startAccessReadModel(options: AccessReadModelOptions): Promise<RunningAccessReadModel> {
  const { nc, subjectPrefix, logger } = options;
  const publisher = await AccessModelPublisher.open({ nc, subjectPrefix, logger });
  const versions = { catalog: 0, policy: 0 };
  const sources: AccessProjectionSources = {
    catalog: async () => {
      const catalog = await options.catalog();
      await publisher.putCatalog(catalog);
      versions.catalog = Math.max(versions.catalog, catalog.version);
    },
    policies: options.policies,
    putPolicy: async (snapshot: PolicySnapshot) => {
      await publisher.putPolicy(snapshot);
      versions.policy = Math.max(versions.policy, snapshot.version);
    },
    principal: async (userId: string) => {
      const user = await options.users.findUserWithAccess(userId);
      if (user) await publisher.putPrincipal(principalEntryOf(user));
    },
    apiKeys: async (keyIds: readonly string[]) => {
      const keys = await options.apiKeys.findMany(keyIds);
      await Promise.all(keys.map((key) => publisher.putApiKey(apiKeyEntryOf(key))));
    },
    serviceIdentity: async (name: string) => {
      const identity = await options.serviceIdentities.find(name);
      if (identity) await publisher.putServiceIdentity(serviceIdentityEntryOf(identity));
    },
  };

  await sources.catalog();
  for (const snapshot of await options.policies.all()) await sources.putPolicy(snapshot);
  // A handful of rows, and every subgraph verifies service tokens against them: written before iam serves.
  for (const identity of await options.serviceIdentities.all()) await publisher.putServiceIdentity(serviceIdentityEntryOf(identity));
  const stopHeartbeat = publisher.startHeartbeat(options.heartbeatMs, () => ({
    at: options.clock.now().toISOString(),
    catalogVersion: versions.catalog,
    policyVersion: versions.policy,
  }));

  const stream = iamStream(subjectPrefix);
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm, [stream]);
  const declaration: ConsumerDeclaration = {
    durableName: ACCESS_PROJECTION_CONSUMER,
    filterSubjects: [prefixSubject(`${SUBJECT_FAMILIES.platformIam}.>`, subjectPrefix)],
    ackWaitMs: 30_000,
    maxDeliver: 10,
    backoffMs: [100, 1_000, 5_000, 30_000],
  };
  await ensureConsumer(jsm, stream.name, declaration);
  const projection = await startAccessProjection({
    js: jetstream(nc),
    pool: options.pool,
    schema: options.schema,
    stream: stream.name,
    consumer: declaration,
    sources,
    logger,
    metrics: options.metrics,
  });

  let stopping = false;
  const putEntry = (user: UserWithAccess) => publisher.putPrincipal(principalEntryOf(user));
  const putKey = (key: ApiKeyWithProject) => publisher.putApiKey(apiKeyEntryOf(key));
  const rebuilt = Promise.all([
    rebuildAll((page) => options.users.usersWithAccess(page), putEntry, () => stopping).then(
      (count) => logger.info({ users: count }, 'access read model: every user published'),
      (error: unknown) => logger.error({ err: error }, 'access read model: user rebuild failed; deltas still apply'),
    ),
    rebuildAll((page) => options.apiKeys.page(page), putKey, () => stopping).then(
      (count) => logger.info({ apiKeys: count }, 'access read model: every API key published'),
      (error: unknown) => logger.error({ err: error }, 'access read model: API key rebuild failed; deltas still apply'),
    ),
  ]).then(() => undefined);

  const credentials: CredentialPublisher = {
    apiKeys: (keyIds) =>
      sources.apiKeys(keyIds).catch((error: unknown) => logger.warn({ err: error, keyIds }, 'access read model: API key entry not pushed; its event will carry it')),
    serviceIdentity: (name) =>
      sources
        .serviceIdentity(name)
        .catch((error: unknown) => logger.warn({ err: error, name }, 'access read model: service identity entry not pushed; its event will carry it')),
  };

  return {
    rebuilt,
    credentials,
    stop: async () => {
      stopping = true;
      stopHeartbeat();
      await projection.stop();
      await rebuilt;
    },
  };
}

/** Every row's entry (users, API keys), a keyset page at a time, a few puts in flight. */
async function rebuildAll<T extends { createdAt: Date; id: string }>(
  pageOf: (page: PageRequest) => Promise<T[]>,
  put: (row: T) => Promise<unknown>,
  stopped: () => boolean,
): Promise<number> {
  let count = 0;
  let after: { createdAt: Date; id: string } | null = null;
  while (!stopped()) {
    const page = await pageOf({ first: REBUILD_PAGE, after });
    const batch = page.slice(0, REBUILD_PAGE);
    for (let i = 0; i < batch.length; i += REBUILD_CONCURRENCY) {
      await Promise.all(batch.slice(i, i + REBUILD_CONCURRENCY).map((row) => put(row)));
    }
    count += batch.length;
    if (page.length <= REBUILD_PAGE) break;
    const last = batch.at(-1)!;
    after = { createdAt: last.createdAt, id: last.id };
  }
  return count;
}

function iamStream(subjectPrefix: string) {
  const subject = prefixSubject(`${SUBJECT_FAMILIES.platformIam}.>`, subjectPrefix);
  const stream = streamDeclarations({ subjectPrefix }).find((declaration) => declaration.subjects.includes(subject));
  if (stream === undefined) throw new RangeError(`no stream declared for ${subject}`);
  return stream;
}
