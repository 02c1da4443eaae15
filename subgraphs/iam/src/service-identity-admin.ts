import { randomUUID } from 'node:crypto';
import type { DatabaseConfig } from '@aifactory/subgraph-kit';
import { openIamDatabase } from './data/database.js';
import type { ServiceIdentityWithKeys } from './data/service-identities.js';
import type { AuditCaller } from './domain/audit.js';
import { createIamServices } from './services.js';

/** A service identity as an operator sees it: never a private key, which iam never holds. */
export interface ServiceIdentityView {
  name: string;
  status: 'active' | 'disabled';
  scopes: string[];
  audiences: string[];
  disabledReason: string | null;
  keys: Array<{ kid: string; createdAt: string; retiredAt: string | null }>;
  version: number;
}

/**
 * iam's service identities for operators' tools: the secrets:rotate CLI
 * (register the new credential's public key, retire the old one), the dev
 * seed, and an emergency disable. The same domain code as the GraphQL API,
 * with the system as the actor: every change is announced and audited, and
 * a running iam pushes it to the read model from its event.
 */
export interface ServiceIdentityAdmin {
  list(): Promise<ServiceIdentityView[]>;
  registerKey(name: string, publicKeyPem: string): Promise<{ name: string; kid: string }>;
  retireKey(name: string, kid: string): Promise<ServiceIdentityView>;
  disable(name: string, reason: string): Promise<ServiceIdentityView>;
  enable(name: string): Promise<ServiceIdentityView>;
  close(): Promise<void>;
}

export function openServiceIdentityAdmin(config: DatabaseConfig, actorId = 'iam-service-identities'): ServiceIdentityAdmin {
  const database = openIamDatabase(config);
  const services = createIamServices(database, { EVENT_SUBJECT_PREFIX: config.EVENT_SUBJECT_PREFIX, DEFAULT_BILLING_CURRENCY: 'USD' });
  const origin = (): AuditCaller => ({ actor: { type: 'system', id: actorId }, correlationId: `service-identities-${randomUUID()}` });
  const identities = services.serviceIdentities;
  return {
    list: async () => (await services.serviceIdentityStore.all()).map(viewOf),
    registerKey: async (name, publicKeyPem) => ({ name, kid: (await identities.registerKey(origin(), name, publicKeyPem)).kid }),
    retireKey: async (name, kid) => viewOf(await identities.retireKey(origin(), name, kid)),
    disable: async (name, reason) => viewOf(await identities.disable(origin(), name, reason)),
    enable: async (name) => viewOf(await identities.enable(origin(), name)),
    close: () => database.close(),
  };
}

export function viewOf(identity: ServiceIdentityWithKeys): ServiceIdentityView {
  return {
    name: identity.name,
    status: identity.status,
    scopes: identity.scopes,
    audiences: identity.audiences,
    disabledReason: identity.disabledReason,
    keys: identity.keys.map((key) => ({ kid: key.kid, createdAt: key.createdAt.toISOString(), retiredAt: key.retiredAt?.toISOString() ?? null })),
    version: identity.version,
  };
}
