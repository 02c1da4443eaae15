import { randomUUID } from 'node:crypto';
import type { ApiKeyEntry, CatalogSnapshot, Heartbeat, PolicySnapshot, PrincipalEntry, ServiceIdentityEntry } from '@aifactory/authz';
import { createLogger, type Logger } from '@aifactory/logging';
import { TEST_NATS_URL } from '@aifactory/testing';
import { connect, type NatsConnection } from '@nats-io/transport-node';

export const ISSUER = 'https://id.aifactory.example/realms/aifactory';

export function connectTestNats(name: string): Promise<NatsConnection> {
  return connect({ servers: TEST_NATS_URL, name });
}

export function quietLogger(): Logger {
  return createLogger({ service: 'access-model-test', level: 'silent' });
}

export function catalogSnapshot(version: number): CatalogSnapshot {
  return {
    version,
    registryVersions: { scopes: version, roles: 1 },
    roles: { viewer: { levels: ['organization', 'department', 'project'], rank: 0, scopes: ['platform:organization:read'] } },
    platformRoles: { platform_admin: { scopes: ['platform:organization:read'] } },
    scopes: { 'platform:organization:read': { product: 'platform', lifecycle: 'active', riskClass: 'low', memberVisible: true } },
    publishedAt: new Date().toISOString(),
  };
}

export function principalEntry(version: number, overrides: Partial<PrincipalEntry> = {}): PrincipalEntry {
  const organizationId = randomUUID();
  return {
    userId: randomUUID(),
    issuer: ISSUER,
    subject: randomUUID(),
    email: 'ada@example.com',
    emailVerified: true,
    name: 'Ada',
    platformRoles: [],
    grants: [{ level: 'organization', id: organizationId, role: 'org_admin', organizationId, departmentId: null }],
    version,
    updatedAt: new Date().toISOString(),
    ...overrides,
  };
}

export function policySnapshot(version: number, organizationId: string | null): PolicySnapshot {
  return {
    version,
    organizationId,
    planId: null,
    keys: {
      'platform.gateway.requests_per_minute': {
        key: 'platform.gateway.requests_per_minute',
        type: 'integer',
        unit: 'requests',
        default: '600',
        direction: 'ceiling',
        application: 'per_project',
        enumValues: null,
        description: 'Requests a project may make per minute.',
        lifecycle: 'active',
      },
    },
    layers: { global: { 'platform.gateway.requests_per_minute': '600' }, plan: {}, organization: {}, departments: {}, projects: {} },
    publishedAt: new Date().toISOString(),
  };
}

export function heartbeatAt(at: Date, version = 1): Heartbeat {
  return { at: at.toISOString(), catalogVersion: version, policyVersion: version };
}

/** Polls instead of sleeping: resolves as soon as `check` holds, fails after `timeoutMs`. */
export async function eventually(check: () => boolean, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function apiKeyEntry(version: number, overrides: Partial<ApiKeyEntry> = {}): ApiKeyEntry {
  return {
    keyId: 'abcdefghijklmnopqrst',
    serviceAccountId: randomUUID(),
    organizationId: randomUUID(),
    departmentId: randomUUID(),
    projectId: randomUUID(),
    scopes: ['platform:project:read'],
    status: 'active',
    expiresAt: null,
    graceUntil: null,
    hash: 'hmac-of-the-secret-not-the-secret-itself-0000',
    pepperVersion: 1,
    registryVersion: 1,
    version,
    updatedAt: new Date().toISOString(),
    ...overrides,
  };
}

export function serviceIdentityEntry(version: number, overrides: Partial<ServiceIdentityEntry> = {}): ServiceIdentityEntry {
  return {
    name: 'tokenfactory',
    status: 'active',
    scopes: ['platform:billing:read'],
    audiences: ['billing'],
    keys: [{ kid: 'kid-1', publicKeyPem: '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n' }],
    version,
    updatedAt: new Date().toISOString(),
    ...overrides,
  };
}
