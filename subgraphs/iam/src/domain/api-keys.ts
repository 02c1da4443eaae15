import { z } from 'zod';
import type { AuthzResource } from '@aifactory/authz';
import { AppError, parseInput } from '@aifactory/errors';
import { issueApiKey, type ApiKeyEnvironment, type PepperRing } from '@aifactory/service-auth';
import type { Outbox } from '@aifactory/subgraph-kit';
import type { AccessStore } from '../data/access.js';
import type { ApiKeyStore, ApiKeyWithProject, KeyUse } from '../data/api-keys.js';
import type { HierarchyStore, IamTransaction, Project } from '../data/hierarchy.js';
import type { ServiceAccount, ServiceAccountStore } from '../data/service-accounts.js';
import {
  ALLOW_NO_EXPIRY_KEY,
  DEFAULT_TTL_KEY,
  durationSeconds,
  keyExpiry,
  MAX_ROTATION_GRACE_KEY,
  MAX_TTL_KEY,
  rotationGraceUntil,
  type KeyLifetimePolicy,
} from './api-key-policy.js';
import { apiKeyResource } from './api-key-writer.js';
import { auditEvent, type AuditCaller } from './audit.js';
import { originOf, type Caller } from './caller.js';
import { apiKeyEvent } from './credential-events.js';
import type { CredentialPublication } from './credential-publication.js';
import type { FreshPolicy } from './fresh-policy.js';
import { labelsOf, labelsSchema } from './labels.js';
import { connectionOf, emptyConnection, type Connection, type PageRequest } from './pagination.js';
import { projectResource } from './service-accounts.js';

export const API_KEY_READ = 'platform:api_key:read';
export const API_KEY_MANAGE = 'platform:api_key:manage';

/** The key id part of an API key's text (service-auth api-key-format.ts). */
const keyIdSchema = z.string().regex(/^[a-z2-7]{20}$/, 'is not an API key id');
const scopesSchema = z
  .array(z.string().min(1).max(200))
  .min(1, 'must name at least one scope')
  .max(100)
  .transform((scopes) => [...new Set(scopes)].sort());
const expiryFields = { expiresAt: z.date().nullish(), neverExpires: z.boolean().nullish() };
const createInput = z.object({ serviceAccountId: z.uuid(), scopes: scopesSchema, labels: labelsSchema.nullish(), ...expiryFields });
const rotateInput = z.object({ id: keyIdSchema, graceSeconds: z.number().int(), ...expiryFields });
const revokeInput = z.object({ id: keyIdSchema, reason: z.string().trim().max(500).nullish() });

export type CreateApiKeyInput = z.input<typeof createInput>;
export type RotateApiKeyInput = z.input<typeof rotateInput>;

/** A new key and its text, shown to its creator once: nothing keeps the text after this response. */
export interface IssuedKey {
  apiKey: ApiKeyWithProject;
  secret: string;
}

export interface ApiKeyConfig {
  /** The versioned pepper the secrets' HMACs are keyed with; absent where no key is ever made (seeds). */
  pepper: PepperRing | undefined;
  /** The environment named in every key's prefix (`aif_<env>_...`). */
  environment: ApiKeyEnvironment;
}

/**
 * API keys of service accounts (issue 15). A key carries registered scopes
 * its creator holds on the project, labels, an expiry within policy, its
 * creator and the catalog version it was issued under. Only an HMAC of its
 * secret is stored; the key's text is returned once, at creation (or
 * rotation). Every create, rotate and revoke writes its domain event and
 * its audit record in its transaction, and pushes the key's read-model
 * entry at once after the commit.
 */
export class ApiKeyService {
  constructor(
    private readonly keys: ApiKeyStore,
    private readonly accounts: ServiceAccountStore,
    private readonly hierarchy: HierarchyStore,
    private readonly access: AccessStore,
    private readonly outbox: Outbox,
    private readonly policy: FreshPolicy,
    private readonly publication: CredentialPublication,
    private readonly config: ApiKeyConfig,
  ) {}

  // ---------------------------------------------------------------- reads

  async apiKey(caller: Caller, id: string): Promise<ApiKeyWithProject | null> {
    const key = keyIdSchema.safeParse(id).success ? await this.keys.find(id) : null;
    return key && caller.access.can(API_KEY_READ, projectResource(key)) ? key : null;
  }

  async apiKeysOfProject(caller: Caller, project: Project, page: PageRequest): Promise<Connection<ApiKeyWithProject>> {
    if (!caller.access.can(API_KEY_READ, { organizationId: project.organizationId, departmentId: project.departmentId, projectId: project.id })) {
      return emptyConnection();
    }
    return connectionOf(await this.keys.ofProject(project.id, page), page);
  }

  async apiKeysOf(caller: Caller, account: ServiceAccount, page: PageRequest): Promise<Connection<ApiKeyWithProject>> {
    if (!caller.access.can(API_KEY_READ, projectResource(account))) return emptyConnection();
    return connectionOf(await this.keys.ofServiceAccount(account.id, page), page);
  }

  // -------------------------------------------------------------- changes

  async createApiKey(caller: Caller, input: CreateApiKeyInput): Promise<IssuedKey> {
    const valid = parseInput(createInput, input);
    const account = await this.accounts.find(valid.serviceAccountId);
    if (!account) throw new AppError('NOT_FOUND', 'Service account not found');
    const resource = projectResource(account);
    caller.access.require(API_KEY_MANAGE, resource);
    this.requireHeldScopes(caller, valid.scopes, resource);
    const now = new Date();
    const expiresAt = keyExpiry(valid, this.lifetimePolicy(caller, 'createApiKey', account), platformAdmin(caller), now);
    const creator = await this.access.userOfPrincipal(caller.principal);
    const pepper = await this.currentPepper();
    const issued = issueApiKey(this.config.environment);
    const origin = originOf(caller);
    const catalog = caller.access.catalog.snapshot;
    const key = await this.hierarchy.transaction(async (tx) => {
      await this.requireLiveAccount(tx, account);
      const created = await this.keys.create(tx, {
        id: issued.keyId,
        serviceAccountId: account.id,
        ...resource,
        prefix: issued.prefix,
        fingerprint: issued.fingerprint,
        hash: pepper.hash(issued.secret),
        pepperVersion: pepper.currentVersion,
        scopes: valid.scopes,
        labels: valid.labels ?? [],
        expiresAt,
        createdBy: creator?.id ?? null,
        registryVersion: catalog.version,
      });
      await this.outbox.add(tx, apiKeyEvent('created', created, origin, catalog.registryVersions));
      await this.outbox.add(tx, this.audit('iam.api_key.create', origin, created, { scopes: created.scopes, expiresAt: created.expiresAt?.toISOString() ?? null }));
      return created;
    });
    await this.publication.apiKeys([key.id]);
    return { apiKey: key, secret: issued.raw };
  }

  /**
   * A new key with the old one's service account, scopes and labels; the old
   * key works beside it until the grace given in the call ends (at most the
   * policy's). The rotating caller must hold every scope the key carries, as
   * its creator had to. A revoked, expired or already rotated key is refused
   * (IAM_API_KEY_NOT_ACTIVE).
   */
  async rotateApiKey(caller: Caller, input: RotateApiKeyInput): Promise<IssuedKey & { previous: ApiKeyWithProject }> {
    const valid = parseInput(rotateInput, input);
    const current = await this.keys.find(valid.id);
    if (!current) throw new AppError('NOT_FOUND', 'API key not found');
    const resource = projectResource(current);
    caller.access.require(API_KEY_MANAGE, resource);
    this.requireHeldScopes(caller, current.scopes, resource);
    const now = new Date();
    const policy = this.lifetimePolicy(caller, 'rotateApiKey', current);
    const graceUntil = rotationGraceUntil(valid.graceSeconds, policy, now);
    const expiresAt = keyExpiry(valid, policy, platformAdmin(caller), now);
    const creator = await this.access.userOfPrincipal(caller.principal);
    const pepper = await this.currentPepper();
    const issued = issueApiKey(this.config.environment);
    const origin = originOf(caller);
    const catalog = caller.access.catalog.snapshot;
    const rotated = await this.hierarchy.transaction(async (tx) => {
      const account = await this.accounts.find(current.serviceAccountId, tx);
      if (!account) throw new AppError('NOT_FOUND', 'Service account not found');
      await this.requireLiveAccount(tx, account);
      const locked = await this.keys.lock(tx, valid.id);
      if (!locked) throw new AppError('NOT_FOUND', 'API key not found');
      if (locked.status !== 'active' || locked.rotatedToKeyId !== null || (locked.expiresAt !== null && locked.expiresAt <= now)) {
        throw new AppError('IAM_API_KEY_NOT_ACTIVE', 'Only an active key that was not rotated yet can be rotated', {
          details: { keyId: locked.id, status: locked.status, rotatedToKeyId: locked.rotatedToKeyId },
        });
      }
      const successor = await this.keys.create(tx, {
        id: issued.keyId,
        serviceAccountId: locked.serviceAccountId,
        ...resource,
        prefix: issued.prefix,
        fingerprint: issued.fingerprint,
        hash: pepper.hash(issued.secret),
        pepperVersion: pepper.currentVersion,
        scopes: locked.scopes,
        labels: labelsOf(locked.labels),
        expiresAt,
        createdBy: creator?.id ?? null,
        registryVersion: catalog.version,
        rotatedFromKeyId: locked.id,
      });
      const previous = await this.keys.markRotated(tx, locked.id, { graceUntil, rotatedToKeyId: successor.id });
      await this.outbox.add(tx, apiKeyEvent('created', successor, origin, catalog.registryVersions));
      await this.outbox.add(tx, apiKeyEvent('rotated', previous, origin));
      await this.outbox.add(
        tx,
        this.audit('iam.api_key.rotate', origin, previous, {
          newKeyId: successor.id,
          graceSeconds: valid.graceSeconds,
          graceUntil: graceUntil.toISOString(),
          expiresAt: successor.expiresAt?.toISOString() ?? null,
        }),
      );
      return { successor, previous };
    });
    await this.publication.apiKeys([rotated.previous.id, rotated.successor.id]);
    return { apiKey: rotated.successor, secret: issued.raw, previous: rotated.previous };
  }

  /** Takes effect at once. Revoking a revoked key returns it unchanged, with no new event. */
  async revokeApiKey(caller: Caller, input: { id: string; reason?: string | null }): Promise<ApiKeyWithProject> {
    const valid = parseInput(revokeInput, input);
    const current = await this.keys.find(valid.id);
    if (!current) throw new AppError('NOT_FOUND', 'API key not found');
    caller.access.require(API_KEY_MANAGE, projectResource(current));
    const origin = originOf(caller);
    const revoked = await this.hierarchy.transaction(async (tx) => {
      const locked = await this.keys.lock(tx, valid.id);
      if (!locked) throw new AppError('NOT_FOUND', 'API key not found');
      if (locked.status === 'revoked') return { key: locked, changed: false };
      const key = await this.keys.revoke(tx, locked.id, { revokedBy: origin.actor.id, revokeReason: valid.reason ?? null });
      await this.outbox.add(tx, apiKeyEvent('revoked', key, origin));
      await this.outbox.add(tx, this.audit('iam.api_key.revoke', origin, key, { reason: key.revokeReason }));
      return { key, changed: true };
    });
    if (revoked.changed) await this.publication.apiKeys([revoked.key.id]);
    return revoked.key;
  }

  /**
   * The gateway's batch of key uses: last use in one conditional statement
   * (at most once a minute per key), and each re-hash under a newer pepper
   * version the gateway computed after verifying the secret with the old
   * one. A re-hash to a version iam's pepper file does not hold is skipped:
   * no key is ever moved to a pepper nobody can verify it with.
   */
  async recordUsage(origin: AuditCaller, uses: ReadonlyArray<KeyUse & { rehash?: { pepperVersion: number; hash: string } | undefined }>): Promise<number> {
    const written = new Set(await this.keys.recordUses(uses));
    const rehashes = uses.flatMap((use) => (use.rehash === undefined ? [] : [{ keyId: use.keyId, ...use.rehash }]));
    const pepper = this.config.pepper;
    // A re-hash follows a pepper rotation iam may not have read yet: at most one re-read per call, whatever the batch holds.
    if (pepper !== undefined && rehashes.some((rehash) => !pepper.has(rehash.pepperVersion))) await pepper.reloadIfChanged();
    const rehashed: string[] = [];
    for (const rehash of rehashes) {
      if (pepper?.has(rehash.pepperVersion) !== true) continue;
      const key = await this.hierarchy.transaction(async (tx) => {
        const changed = await this.keys.rehash(tx, rehash.keyId, rehash.pepperVersion, rehash.hash);
        if (changed) await this.outbox.add(tx, apiKeyEvent({ updated: 'rehashed' }, changed, origin));
        return changed;
      });
      if (key) rehashed.push(key.id);
    }
    await this.publication.apiKeys(rehashed);
    for (const id of rehashed) written.add(id);
    return written.size;
  }

  // -------------------------------------------------------------- helpers

  /**
   * Registered scopes only (IAM_SCOPE_UNKNOWN), none retired
   * (AUTH_SCOPE_RETIRED), and each held by the caller on the key's project
   * (IAM_API_KEY_SCOPE_NOT_HELD): a key never carries more than its creator
   * holds there. Each refusal is audited by `can()`.
   */
  private requireHeldScopes(caller: Caller, scopes: readonly string[], resource: AuthzResource): void {
    const unknown = scopes.filter((scope) => caller.access.catalog.scope(scope) === undefined);
    if (unknown.length > 0) throw new AppError('IAM_SCOPE_UNKNOWN', `Not registered: ${unknown.join(', ')}`, { details: { scopes: unknown } });
    const notHeld = scopes.filter((scope) => !caller.access.can(scope, resource));
    if (notHeld.length > 0) {
      throw new AppError('IAM_API_KEY_SCOPE_NOT_HELD', `You do not hold ${notHeld.join(', ')} on this project`, { details: { scopes: notHeld } });
    }
  }

  /** From a fresh policy snapshot (POLICY_SNAPSHOT_STALE otherwise), at the key's project. */
  private lifetimePolicy(caller: Caller, operation: string, at: { organizationId: string; departmentId: string; projectId: string }): KeyLifetimePolicy {
    const value = (key: string) => this.policy.value(caller, operation, at.organizationId, { departmentId: at.departmentId, projectId: at.projectId }, key);
    return {
      defaultTtlSeconds: durationSeconds(DEFAULT_TTL_KEY, value(DEFAULT_TTL_KEY)),
      maxTtlSeconds: durationSeconds(MAX_TTL_KEY, value(MAX_TTL_KEY)),
      allowNoExpiry: value(ALLOW_NO_EXPIRY_KEY) === true,
      maxRotationGraceSeconds: durationSeconds(MAX_ROTATION_GRACE_KEY, value(MAX_ROTATION_GRACE_KEY)),
    };
  }

  /** The project under a share lock (archiving waits for this transaction), active, and the account active. */
  private async requireLiveAccount(tx: IamTransaction, account: ServiceAccount): Promise<void> {
    const status = await this.keys.projectStatusShared(tx, account.projectId);
    if (status === null) throw new AppError('NOT_FOUND', 'Project not found');
    if (status !== 'active') throw new AppError('IAM_ARCHIVED', 'The project is archived: its keys are suspended and no new ones are made');
    if (account.status !== 'active') throw new AppError('IAM_ARCHIVED', 'The service account is archived');
  }

  /** The pepper file as it is now: a rotation since the last key takes effect with the next one, not the next periodic re-read. */
  private async currentPepper(): Promise<PepperRing> {
    const pepper = this.config.pepper;
    if (pepper === undefined) throw new AppError('INTERNAL_ERROR', 'No API key pepper is configured (API_KEY_PEPPER_FILE)');
    await pepper.reloadIfChanged();
    return pepper;
  }

  private audit(action: string, origin: AuditCaller, key: ApiKeyWithProject, details: Record<string, unknown>) {
    return auditEvent({
      action,
      outcome: 'succeeded',
      caller: origin,
      scope: API_KEY_MANAGE,
      resource: apiKeyResource(key),
      details: { keyId: key.id, prefix: key.prefix, serviceAccountId: key.serviceAccountId, ...details },
    });
  }
}

function platformAdmin(caller: Caller): { platformAdmin: boolean } {
  return { platformAdmin: caller.principal.platformRoles.includes('platform_admin') };
}
