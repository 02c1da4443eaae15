import type { ApiKeyEntry, ServiceIdentityEntry } from '@aifactory/authz';
import type { ApiKeyWithProject } from '../data/api-keys.js';
import type { ServiceIdentityWithKeys } from '../data/service-identities.js';

/**
 * An API key as the access read model carries it (packages/authz model.ts):
 * the hash and its pepper version, never the secret. Revoked wins over a
 * suspended project; a rotated key stays `active` with `graceUntil`, and
 * expiry is judged by the gateway from `expiresAt`. Its version is the row's,
 * bumped by every change, so the KV keeps only the newest.
 */
export function apiKeyEntryOf(key: ApiKeyWithProject): ApiKeyEntry {
  return {
    keyId: key.id,
    serviceAccountId: key.serviceAccountId,
    organizationId: key.organizationId,
    departmentId: key.departmentId,
    projectId: key.projectId,
    scopes: [...key.scopes],
    status: key.status === 'revoked' ? 'revoked' : key.project.status === 'archived' ? 'project_archived' : 'active',
    expiresAt: key.expiresAt?.toISOString() ?? null,
    graceUntil: key.graceUntil?.toISOString() ?? null,
    hash: key.hash,
    pepperVersion: key.pepperVersion,
    registryVersion: key.registryVersion,
    version: key.version,
    updatedAt: key.updatedAt.toISOString(),
  };
}

/** A service identity with its public keys that are not retired; disabled, it keeps them so enabling restores it at once. */
export function serviceIdentityEntryOf(identity: ServiceIdentityWithKeys): ServiceIdentityEntry {
  return {
    name: identity.name,
    status: identity.status,
    scopes: [...identity.scopes],
    audiences: [...identity.audiences],
    keys: identity.keys.filter((key) => key.retiredAt === null).map((key) => ({ kid: key.kid, publicKeyPem: key.publicKeyPem })),
    version: identity.version,
    updatedAt: identity.updatedAt.toISOString(),
  };
}

export const API_KEY_STATUSES = ['active', 'rotating', 'rotated_out', 'revoked', 'expired', 'suspended'] as const;
export type ApiKeyStatusView = (typeof API_KEY_STATUSES)[number];

/**
 * What a key's owner sees, at read time: revoked, suspended (its project is
 * archived), rotated out (its grace is over), expired, rotating (in its
 * grace, beside its successor), else active.
 */
export function apiKeyStatusAt(key: ApiKeyWithProject, now: Date): ApiKeyStatusView {
  if (key.status === 'revoked') return 'revoked';
  if (key.project.status === 'archived') return 'suspended';
  if (key.graceUntil !== null && key.graceUntil.getTime() <= now.getTime()) return 'rotated_out';
  if (key.expiresAt !== null && key.expiresAt.getTime() <= now.getTime()) return 'expired';
  if (key.graceUntil !== null) return 'rotating';
  return 'active';
}
