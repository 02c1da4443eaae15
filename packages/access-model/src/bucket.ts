import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '@aifactory/errors';
import { JetStreamApiCodes, JetStreamApiError, StorageType, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

/**
 * IAM's read model is one JetStream KV bucket (ARCHITECTURE.md, Decisions:
 * Principal): IAM writes it, the gateway and every subgraph watch it, so
 * authorization never waits on IAM. Test runs get their own bucket through
 * the same prefix that renames their event streams (`<PREFIX>_PLATFORM_IAM`).
 */
export function accessBucketName(subjectPrefix?: string): string {
  return subjectPrefix ? `${subjectPrefix.toUpperCase()}_IAM_ACCESS` : 'IAM_ACCESS';
}

/** JetStream names a bucket's stream `KV_<bucket>`; readers consume it directly (see key-watch.ts). */
export function accessStreamName(subjectPrefix?: string): string {
  return `KV_${accessBucketName(subjectPrefix)}`;
}

export const CATALOG_KEY = 'catalog';
export const HEARTBEAT_KEY = 'heartbeat';
export const PRINCIPAL_KEY_PREFIX = 'principal.';
export const POLICY_KEY_PREFIX = 'policy.';
export const GLOBAL_POLICY_KEY = 'policy.global';
const ORG_POLICY_KEY_PREFIX = 'policy.org.';
export const API_KEY_KEY_PREFIX = 'apikey.';
export const SERVICE_KEY_PREFIX = 'service.';

/**
 * Hashed because issuers are URLs and subjects are whatever the identity
 * provider chose: neither is a valid KV key token. The newline separates
 * them because neither an issuer URL nor an OIDC subject contains one.
 */
export function principalKey(issuer: string, subject: string): string {
  return PRINCIPAL_KEY_PREFIX + createHash('sha256').update(`${issuer}\n${subject}`).digest('base64url');
}

/** A single KV token: a dot would add levels, `*` and `>` would make the key a wildcard. */
const KEY_TOKEN = /^[A-Za-z0-9_-]+$/;

export function policyKey(organizationId: string | null): string {
  if (organizationId === null) return GLOBAL_POLICY_KEY;
  if (!KEY_TOKEN.test(organizationId)) {
    throw new AppError('INTERNAL_ERROR', 'Organization id is not usable as a read-model key', { details: { organizationId } });
  }
  return orgPolicyKey(organizationId);
}

/** Unchecked, for lookups: an id that could never be a key simply finds nothing. */
export function orgPolicyKey(organizationId: string): string {
  return ORG_POLICY_KEY_PREFIX + organizationId;
}

/** An API key by its key id (a base32 token, see @aifactory/service-auth's api-key-format). */
export function apiKeyKey(keyId: string): string {
  if (!KEY_TOKEN.test(keyId)) throw new AppError('INTERNAL_ERROR', 'API key id is not usable as a read-model key', { details: { keyId } });
  return API_KEY_KEY_PREFIX + keyId;
}

export function serviceIdentityKey(name: string): string {
  if (!KEY_TOKEN.test(name)) throw new AppError('INTERNAL_ERROR', 'Service name is not usable as a read-model key', { details: { name } });
  return SERVICE_KEY_PREFIX + name;
}

export interface OpenAccessBucketOptions {
  subjectPrefix?: string;
  /** IAM only: it owns the bucket and creates it idempotently; everyone else binds. */
  create: boolean;
  /** Binding: how long to wait between looks while the bucket does not exist yet. */
  retryMs?: number;
  /** Binding: gives up waiting (rejects with the signal's reason). */
  signal?: AbortSignal;
}

/**
 * One value per key (history 1): readers want the current state, and
 * "put if newer" compares against the one current revision. File storage so
 * a NATS restart does not empty the model while IAM is down; no TTL, because
 * an entry is valid until IAM replaces it and staleness is judged from the
 * heartbeat, not from an entry's age.
 */
export async function openAccessBucket(nc: NatsConnection, options: OpenAccessBucketOptions): Promise<KV> {
  const name = accessBucketName(options.subjectPrefix);
  const kvm = new Kvm(nc);
  if (options.create) {
    try {
      return await kvm.create(name, {
        history: 1,
        storage: StorageType.File,
        description: 'IAM read model: catalog, principals, policy snapshots, heartbeat (owner: iam).',
      });
    } catch (error) {
      // Another IAM instance created it between our look and our add.
      if (!(error instanceof JetStreamApiError && error.code === STREAM_NAME_IN_USE)) throw error;
    }
  } else {
    await waitForAccessBucket(nc, options);
  }
  return kvm.open(name);
}

/** JetStream's answer when a concurrent create won with a different config. */
const STREAM_NAME_IN_USE = 10058;

/**
 * Readers may start before IAM has ever run (a fresh stack): they wait for
 * the bucket rather than create it, so its configuration has one owner.
 */
async function waitForAccessBucket(nc: NatsConnection, options: OpenAccessBucketOptions): Promise<void> {
  const jsm = await jetstreamManager(nc, { checkAPI: false });
  const stream = accessStreamName(options.subjectPrefix);
  for (;;) {
    options.signal?.throwIfAborted();
    if (await streamExists(jsm.streams, stream)) return;
    await sleep(options.retryMs ?? 500, undefined, { signal: options.signal });
  }
}

async function streamExists(streams: { info(name: string): Promise<unknown> }, name: string): Promise<boolean> {
  try {
    await streams.info(name);
    return true;
  } catch (error) {
    if (isStreamNotFound(error)) return false;
    throw error;
  }
}

export function isStreamNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
}

/**
 * Tests and benchmarks: removes the bucket one prefixed run created. Refuses
 * without a prefix so it can never delete the real read model.
 */
export async function deleteAccessBucket(nc: NatsConnection, subjectPrefix: string): Promise<boolean> {
  if (subjectPrefix === '') throw new RangeError('refusing to delete the access bucket without a test prefix');
  const jsm = await jetstreamManager(nc, { checkAPI: false });
  try {
    return await jsm.streams.delete(accessStreamName(subjectPrefix));
  } catch (error) {
    if (isStreamNotFound(error)) return false;
    throw error;
  }
}
