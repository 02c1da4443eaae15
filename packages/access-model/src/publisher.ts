import {
  apiKeyEntrySchema,
  serviceIdentityEntrySchema,
  catalogSnapshotSchema,
  heartbeatSchema,
  policySnapshotSchema,
  principalEntrySchema,
  type ApiKeyEntry,
  type ServiceIdentityEntry,
  type CatalogSnapshot,
  type Heartbeat,
  type PolicySnapshot,
  type PrincipalEntry,
} from '@aifactory/authz';
import { AppError } from '@aifactory/errors';
import type { Logger } from '@aifactory/logging';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { z } from 'zod';
import { CATALOG_KEY, HEARTBEAT_KEY, apiKeyKey, openAccessBucket, policyKey, principalKey, serviceIdentityKey } from './bucket.js';

export interface AccessModelPublisherOptions {
  nc: NatsConnection;
  subjectPrefix?: string;
  logger: Logger;
  /** Rounds of read-compare-write before a put gives up under contention. */
  maxAttempts?: number;
}

/**
 * IAM's side of the read model. Every snapshot write is "put if newer": a
 * full rebuild racing a delta (or two IAM instances) can never move a key
 * back to an older version, because each write is conditional on the KV
 * revision it compared against and is redone from a fresh read when another
 * writer got there first.
 */
export class AccessModelPublisher {
  private readonly maxAttempts: number;

  private constructor(
    private readonly kv: KV,
    private readonly logger: Logger,
    maxAttempts: number,
  ) {
    this.maxAttempts = maxAttempts;
  }

  /** Creates the bucket if it is missing (IAM owns it), then binds. */
  static async open(options: AccessModelPublisherOptions): Promise<AccessModelPublisher> {
    const kv = await openAccessBucket(options.nc, { subjectPrefix: options.subjectPrefix, create: true });
    return new AccessModelPublisher(kv, options.logger, options.maxAttempts ?? 20);
  }

  /** Resolves true when it wrote, false when the bucket already held this version or a newer one. */
  putCatalog(snapshot: CatalogSnapshot): Promise<boolean> {
    return this.putIfNewer(CATALOG_KEY, catalogSnapshotSchema, snapshot);
  }

  putPrincipal(entry: PrincipalEntry): Promise<boolean> {
    return this.putIfNewer(principalKey(entry.issuer, entry.subject), principalEntrySchema, entry);
  }

  putPolicy(snapshot: PolicySnapshot): Promise<boolean> {
    return this.putIfNewer(policyKey(snapshot.organizationId), policySnapshotSchema, snapshot);
  }

  /** Hashes only: the entry schema has no field a secret could travel in. */
  async putApiKey(entry: ApiKeyEntry): Promise<boolean> {
    return this.putIfNewer(apiKeyKey(entry.keyId), apiKeyEntrySchema, entry);
  }

  async putServiceIdentity(entry: ServiceIdentityEntry): Promise<boolean> {
    return this.putIfNewer(serviceIdentityKey(entry.name), serviceIdentityEntrySchema, entry);
  }

  /** A plain put: the heartbeat only says "IAM was alive at `at`", so the last write wins. */
  async heartbeat(beat: Heartbeat): Promise<boolean> {
    await this.kv.put(HEARTBEAT_KEY, encode(validated(HEARTBEAT_KEY, heartbeatSchema, beat)));
    return true;
  }

  /**
   * Beats until the returned function is called. A failed beat is logged and
   * the next one tried: readers turn a long gap into staleness, which is the
   * signal we want when IAM cannot reach NATS.
   */
  startHeartbeat(everyMs: number, next: () => Heartbeat): () => void {
    let inFlight = false;
    const beat = (): void => {
      if (inFlight) return;
      inFlight = true;
      this.heartbeat(next())
        .catch((error: unknown) => this.logger.warn({ err: error }, 'access model heartbeat failed'))
        .finally(() => {
          inFlight = false;
        });
    };
    beat();
    const timer = setInterval(beat, everyMs);
    return () => clearInterval(timer);
  }

  private async putIfNewer<T extends { version: number }>(key: string, schema: z.ZodType<T>, value: T): Promise<boolean> {
    const bytes = encode(validated(key, schema, value));
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      const current = await this.kv.get(key);
      const live = current !== null && current.operation === 'PUT';
      if (live && storedVersion(current.string()) >= value.version) return false;
      try {
        if (live) await this.kv.update(key, bytes, current.revision);
        else await this.kv.create(key, bytes);
        return true;
      } catch (error) {
        if (!isRevisionConflict(error)) throw error;
      }
    }
    throw new AppError('IAM_UNAVAILABLE', 'Access model write kept conflicting', {
      details: { key, version: value.version, attempts: this.maxAttempts },
    });
  }
}

/** IAM only writes what its consumers can parse; a failure here is a defect in IAM, not bad input. */
function validated<T>(key: string, schema: z.ZodType<T>, value: T): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new AppError('INTERNAL_ERROR', 'Access model value does not match its schema', {
      cause: result.error,
      details: { key, issues: result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`) },
    });
  }
  return result.data;
}

function encode(value: unknown): string {
  return JSON.stringify(value);
}

/** A stored value without a readable version (hand-written, corrupted) is replaced by any valid one. */
function storedVersion(text: string): number {
  try {
    const version = (JSON.parse(text) as { version?: unknown }).version;
    return typeof version === 'number' ? version : -1;
  } catch {
    return -1;
  }
}

/** JetStream refuses a write whose expected last revision is no longer the key's last one. */
function isRevisionConflict(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
      error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}
