import { randomUUID } from 'node:crypto';
import { AccessModelPublisher, deleteAccessBucket } from '@aifactory/access-model';
import { buildCatalogSnapshot, type ApiKeyEntry, type PolicySnapshot, type PrincipalEntry } from '@aifactory/authz';
import { loadRegistryData } from '@aifactory/contracts';
import { createLogger } from '@aifactory/logging';
import type { NatsConnection } from '@nats-io/transport-node';

const registry = loadRegistryData();
const PUBLISHED_AT = '2026-01-01T00:00:00.000Z';

/** The registry's catalogue, as iam publishes it. */
export const TEST_CATALOG = buildCatalogSnapshot({ scopes: registry.scopes, roles: registry.roles, registryVersions: { scopes: 1, roles: 1 }, publishedAt: PUBLISHED_AT });

/** The global policy snapshot with every registered key at its default, plus these global values. */
export function globalPolicy(version: number, values: Record<string, string | boolean> = {}): PolicySnapshot {
  return {
    version,
    organizationId: null,
    planId: null,
    keys: Object.fromEntries(registry.policyKeys.map((row) => [row.key, { ...row, unit: row.unit ?? null, enumValues: row.enumValues ?? null }])),
    layers: { global: values, plan: {}, organization: {}, departments: {}, projects: {} },
    publishedAt: PUBLISHED_AT,
  } as PolicySnapshot;
}

export function memberEntry(overrides: Partial<PrincipalEntry> & Pick<PrincipalEntry, 'issuer' | 'subject'>): PrincipalEntry {
  return {
    userId: randomUUID(),
    email: `${overrides.subject}@example.com`,
    emailVerified: true,
    name: overrides.subject,
    platformRoles: [],
    grants: [],
    version: 1,
    updatedAt: new Date().toISOString(),
    ...overrides,
  };
}

export function orgGrant(organizationId: string, role = 'viewer'): PrincipalEntry['grants'][number] {
  return { level: 'organization', id: organizationId, role, organizationId, departmentId: null };
}

/**
 * Plays iam's part in the read model for a test's own bucket (named by its
 * subject prefix): catalogue, global policy, principals, API keys and a heartbeat.
 */
export class TestReadModel {
  private constructor(
    readonly publisher: AccessModelPublisher,
    private readonly nc: NatsConnection,
    private readonly subjectPrefix: string,
  ) {}

  static async open(nc: NatsConnection, subjectPrefix: string): Promise<TestReadModel> {
    const publisher = await AccessModelPublisher.open({ nc, subjectPrefix, logger: createLogger({ service: 'iam', level: 'silent' }) });
    await publisher.putCatalog(TEST_CATALOG);
    await publisher.putPolicy(globalPolicy(1));
    return new TestReadModel(publisher, nc, subjectPrefix);
  }

  /** iam's heartbeat, `agoMs` in the past: older than the gateway's budget makes its read model stale. */
  async beat(agoMs = 0): Promise<void> {
    await this.publisher.heartbeat({ at: new Date(Date.now() - agoMs).toISOString(), catalogVersion: TEST_CATALOG.version, policyVersion: 1 });
  }

  async put(entry: PrincipalEntry): Promise<void> {
    await this.publisher.putPrincipal(entry);
  }

  async putKey(entry: ApiKeyEntry): Promise<void> {
    await this.publisher.putApiKey(entry);
  }

  async delete(): Promise<void> {
    await deleteAccessBucket(this.nc, this.subjectPrefix);
  }
}
