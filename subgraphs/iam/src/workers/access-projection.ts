import type pg from 'pg';
import type { PolicySnapshot } from '@aifactory/authz';
import { findEventDefinition, parseEvent, SUBJECT_FAMILIES, type EventEnvelope } from '@aifactory/contracts';
import { runConsumer, type ConsumerDeclaration, type DecodeEvent, type HandleEvents, type KindOf, type RunningConsumer } from '@aifactory/event-consumers';
import type { Logger } from '@aifactory/logging';
import type { ServiceMetrics } from '@aifactory/telemetry';
import type { JetStreamClient } from '@nats-io/jetstream';

/** What the projection writes into the read model, each re-read from IAM's tables (never from the event alone). */
export interface AccessProjectionSources {
  /** Re-reads and puts the catalog. */
  catalog(): Promise<void>;
  policies: {
    /** `policy.global` and every organization's snapshot. */
    all(): Promise<PolicySnapshot[]>;
    one(organizationId: string): Promise<PolicySnapshot>;
  };
  putPolicy(snapshot: PolicySnapshot): Promise<void>;
  /** Re-reads the user's entry and puts it if its access version is newer. */
  principal(userId: string): Promise<void>;
  /** Re-reads the API keys' entries (with their projects' status) and puts each that is newer. */
  apiKeys(keyIds: readonly string[]): Promise<void>;
  serviceIdentity(name: string): Promise<void>;
}

export interface AccessProjectionOptions {
  js: JetStreamClient;
  pool: pg.Pool;
  schema: string;
  stream: string;
  consumer: ConsumerDeclaration;
  sources: AccessProjectionSources;
  logger: Logger;
  metrics: ServiceMetrics;
}

const IAM = `${SUBJECT_FAMILIES.platformIam}.`;

/** Everything IAM publishes is a contract event; anything else is dead-lettered rather than guessed at. */
const decode: DecodeEvent<unknown> = (envelope) => {
  const parsed = parseEvent(envelope);
  return parsed.ok ? { ok: true, payload: parsed.payload } : { ok: false, reason: parsed.reason, detail: parsed.issues.join('; ') };
};

const kindOf: KindOf = (envelope) => findEventDefinition(envelope.type, envelope.version)?.kind;

/** What one batch of events asks the read model to refresh; each thing once, however many events name it. */
interface Refresh {
  catalog: boolean;
  everyPolicy: boolean;
  organizations: Set<string>;
  users: Set<string>;
  apiKeys: Set<string>;
  serviceIdentities: Set<string>;
}

function refreshFor(events: readonly { envelope: EventEnvelope }[]): Refresh {
  const refresh: Refresh = {
    catalog: false,
    everyPolicy: false,
    organizations: new Set(),
    users: new Set(),
    apiKeys: new Set(),
    serviceIdentities: new Set(),
  };
  for (const { envelope } of events) {
    const [aggregate] = envelope.type.slice(IAM.length).split('.');
    switch (aggregate) {
      case 'user':
        refresh.users.add(envelope.aggregateId);
        break;
      case 'api_key':
        // Created, rotated, revoked, re-hashed, flagged, or suspended with its archived project.
        refresh.apiKeys.add(envelope.aggregateId);
        break;
      case 'service_identity':
        refresh.serviceIdentities.add(envelope.aggregateId);
        break;
      case 'registry':
        // A new policy key changes every snapshot's key set; a role or scope change, the catalog.
        refresh.catalog = true;
        refresh.everyPolicy = true;
        break;
      case 'policy':
        // A global or plan value reaches every organization; a value lower down, only its own.
        if (envelope.organizationId === null) refresh.everyPolicy = true;
        else refresh.organizations.add(envelope.organizationId);
        break;
      case 'organization':
      case 'department':
      case 'project':
        if (envelope.organizationId !== null) refresh.organizations.add(envelope.organizationId);
        break;
      default:
        // membership.changed: its holder's user.changed, in the same transaction, carries it;
        // service_account.created: nothing authorizes on an account until it has a key.
        break;
    }
  }
  return refresh;
}

/**
 * The durable consumer that keeps the access read model current: on
 * `user.changed` it puts that user's entry (so a membership change reaches
 * every gateway well within the second), on `registry.changed` the catalog,
 * on policy and hierarchy events the policy snapshots they affect, and on
 * `api_key.*` and `service_identity.updated` those credentials' entries. The
 * writes are "put if newer", so a redelivery or a replay is harmless.
 */
export function startAccessProjection(options: AccessProjectionOptions): Promise<RunningConsumer> {
  const { sources } = options;
  const handle: HandleEvents<unknown> = async (_tx, events) => {
    const refresh = refreshFor(events);
    if (refresh.catalog) await sources.catalog();
    if (refresh.everyPolicy) {
      for (const snapshot of await sources.policies.all()) await sources.putPolicy(snapshot);
    } else {
      for (const organizationId of refresh.organizations) await sources.putPolicy(await sources.policies.one(organizationId));
    }
    await Promise.all([...refresh.users].map((userId) => sources.principal(userId)));
    if (refresh.apiKeys.size > 0) await sources.apiKeys([...refresh.apiKeys]);
    await Promise.all([...refresh.serviceIdentities].map((name) => sources.serviceIdentity(name)));
  };
  return runConsumer({
    js: options.js,
    pool: options.pool,
    schema: options.schema,
    stream: options.stream,
    consumer: options.consumer,
    decode,
    kindOf,
    handle,
    batchSize: 20,
    logger: options.logger,
    metrics: options.metrics,
  });
}
