import {
  API_KEY_EVENTS,
  serviceAccountCreatedV1,
  serviceIdentityUpdatedV1,
  type ApiKeyState,
  type ApiKeyUpdatedPayload,
  type ServiceAccountState,
  type ServiceIdentityState,
} from '@aifactory/contracts';
import type { OutboxEventInput } from '@aifactory/events';
import type { ApiKeyWithProject } from '../data/api-keys.js';
import type { ServiceAccount } from '../data/service-accounts.js';
import type { ServiceIdentityWithKeys } from '../data/service-identities.js';
import type { AuditCaller } from './audit.js';
import { labelsOf } from './labels.js';

function serviceAccountState(account: ServiceAccount): ServiceAccountState {
  return {
    id: account.id,
    organizationId: account.organizationId,
    departmentId: account.departmentId,
    projectId: account.projectId,
    name: account.name,
    description: account.description,
    labels: labelsOf(account.labels),
    status: account.status,
  };
}

/** Ids, prefix, scopes, labels and lifecycle: the hash stays in its row and the read model, and the secret nowhere. */
function apiKeyState(key: ApiKeyWithProject): ApiKeyState {
  return {
    keyId: key.id,
    serviceAccountId: key.serviceAccountId,
    organizationId: key.organizationId,
    departmentId: key.departmentId,
    projectId: key.projectId,
    prefix: key.prefix,
    scopes: [...key.scopes],
    labels: labelsOf(key.labels),
    status: key.status,
    expiresAt: key.expiresAt?.toISOString() ?? null,
    graceUntil: key.graceUntil?.toISOString() ?? null,
    rotatedToKeyId: key.rotatedToKeyId,
    rotatedFromKeyId: key.rotatedFromKeyId,
    revokedAt: key.revokedAt?.toISOString() ?? null,
    createdBy: key.createdBy,
    creatorLeftAt: key.creatorLeftAt?.toISOString() ?? null,
    registryVersion: key.registryVersion,
  };
}

/** `platform.iam.service_account.created` v1 at version 1. */
export function serviceAccountCreated(account: ServiceAccount, origin: AuditCaller): OutboxEventInput {
  return {
    type: serviceAccountCreatedV1.type,
    version: serviceAccountCreatedV1.version,
    aggregateId: account.id,
    aggregateVersion: account.version,
    organizationId: account.organizationId,
    departmentId: account.departmentId,
    projectId: account.projectId,
    actor: origin.actor,
    correlationId: origin.correlationId,
    payload: serviceAccountState(account),
  };
}

export type ApiKeyChange = 'created' | 'rotated' | 'revoked' | { updated: ApiKeyUpdatedPayload['change'] };

/**
 * `platform.iam.api_key.<change>` v1 at the key's version: iam's projection
 * republishes the key's read-model entry on it.
 */
export function apiKeyEvent(change: ApiKeyChange, key: ApiKeyWithProject, origin: AuditCaller, registryVersions?: Record<string, number>): OutboxEventInput {
  const definition = typeof change === 'string' ? API_KEY_EVENTS[change] : API_KEY_EVENTS.updated;
  const payload = typeof change === 'string' ? apiKeyState(key) : { ...apiKeyState(key), change: change.updated };
  return {
    type: definition.type,
    version: definition.version,
    aggregateId: key.id,
    aggregateVersion: key.version,
    organizationId: key.organizationId,
    departmentId: key.departmentId,
    projectId: key.projectId,
    actor: origin.actor,
    correlationId: origin.correlationId,
    ...(registryVersions === undefined ? {} : { registryVersions }),
    payload,
  };
}

/** `platform.iam.service_identity.updated` v1 at the identity's version: key ids only, never a key. */
export function serviceIdentityUpdated(identity: ServiceIdentityWithKeys, change: ServiceIdentityState['change'], origin: AuditCaller): OutboxEventInput {
  const payload: ServiceIdentityState = {
    name: identity.name,
    status: identity.status,
    scopes: [...identity.scopes],
    audiences: [...identity.audiences],
    kids: identity.keys.filter((key) => key.retiredAt === null).map((key) => key.kid),
    disabledReason: identity.disabledReason,
    change,
  };
  return {
    type: serviceIdentityUpdatedV1.type,
    version: serviceIdentityUpdatedV1.version,
    aggregateId: identity.name,
    aggregateVersion: identity.version,
    actor: origin.actor,
    correlationId: origin.correlationId,
    payload,
  };
}
