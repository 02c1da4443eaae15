import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
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
import type { Clock } from '@aifactory/clock';
import { AppError } from '@aifactory/errors';
import type { Logger } from '@aifactory/logging';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { z } from 'zod';
import {
  API_KEY_KEY_PREFIX,
  SERVICE_KEY_PREFIX,
  CATALOG_KEY,
  GLOBAL_POLICY_KEY,
  HEARTBEAT_KEY,
  POLICY_KEY_PREFIX,
  PRINCIPAL_KEY_PREFIX,
  accessBucketName,
  accessStreamName,
  isStreamNotFound,
  orgPolicyKey,
  principalKey,
} from './bucket.js';
import { watchKeys, type KeyRecord, type KeyWatch } from './key-watch.js';
import { StringPool } from './string-pool.js';

/**
 * Which keys a reader follows. Subgraphs authorize from the internal JWT's
 * grants and need only the catalog, policy and service identities (to
 * judge other services' tokens); the gateway turns identities and API keys
 * into principals and needs everything.
 */
export type AccessModelKeys = 'all' | 'catalog-and-policy';

export interface AccessModelReaderOptions {
  nc: NatsConnection;
  subjectPrefix?: string;
  clock: Clock;
  logger: Logger;
  /** The staleness budget: older than this since IAM's last heartbeat, the model is not fresh. */
  maxAgeMs: number;
  keys?: AccessModelKeys;
  /** Between looks for the bucket while IAM has not created it yet. */
  bindRetryMs?: number;
  /** While stale, how often to check that the bucket is still the one this reader follows. */
  verifyBucketEveryMs?: number;
}

/** Told about a principal's new entry; a removed entry arrives as the previous one holding nothing. */
export type PrincipalChangeListener = (entry: PrincipalEntry, previous: PrincipalEntry | undefined) => void;
export type CatalogChangeListener = (catalog: CatalogSnapshot) => void;
/** Told about every API key change after the initial load; a removed key arrives as undefined. */
export type ApiKeyChangeListener = (keyId: string, entry: ApiKeyEntry | undefined) => void;
export type ServiceIdentityChangeListener = (name: string, entry: ServiceIdentityEntry | undefined) => void;

export interface AccessModelStats {
  ready: boolean;
  principals: number;
  policies: number;
  apiKeys: number;
  serviceIdentities: number;
  catalogVersion: number | null;
  heartbeatAgeMs: number | null;
  /** How long the last (re)load of the initial values took; null until one finished. */
  loadMs: number | null;
  /** Values that failed their schema and were ignored, since start. */
  invalidValues: number;
  /** Watches started over after the bucket vanished or a watch ended. */
  rebinds: number;
}

/** Everything the bucket said, as of the last record applied. */
class ModelState {
  catalog: CatalogSnapshot | undefined;
  readonly principals = new Map<string, PrincipalEntry>();
  readonly policies = new Map<string, PolicySnapshot>();
  readonly apiKeys = new Map<string, ApiKeyEntry>();
  readonly services = new Map<string, ServiceIdentityEntry>();
  heartbeat: Heartbeat | undefined;
  heartbeatAtMs = 0;
}

/**
 * A local, always-current copy of IAM's read model (ARCHITECTURE.md,
 * Decisions: Principal): lookups are memory reads, so authorization never
 * waits on IAM or NATS. Freshness is judged from IAM's heartbeat, so a
 * reader cut off from updates notices and its caller can fail closed.
 */
export class AccessModelReader {
  private readonly keys: AccessModelKeys;
  private readonly bindRetryMs: number;
  private readonly verifyBucketEveryMs: number;
  private readonly bucket: string;
  private readonly stream: string;
  private readonly js: JetStreamClient;
  /** Principals' repeated strings (issuers, roles, org ids) stored once; see string-pool.ts. */
  private readonly strings = new StringPool();
  private state = new ModelState();
  private watches: KeyWatch[] = [];
  private running: Promise<void> | undefined;
  private started: Promise<void> | undefined;
  private stopped = false;
  private readonly stopping = new AbortController();
  private isReady = false;
  private readonly readiness: Promise<void>;
  private markReady!: () => void;
  private failReady!: (error: Error) => void;
  private readonly principalListeners = new Set<PrincipalChangeListener>();
  private readonly catalogListeners = new Set<CatalogChangeListener>();
  private readonly apiKeyListeners = new Set<ApiKeyChangeListener>();
  private readonly serviceListeners = new Set<ServiceIdentityChangeListener>();
  private loadMs: number | null = null;
  private invalidValues = 0;
  private rebinds = 0;

  constructor(private readonly options: AccessModelReaderOptions) {
    this.keys = options.keys ?? 'all';
    this.bindRetryMs = options.bindRetryMs ?? 500;
    this.verifyBucketEveryMs = options.verifyBucketEveryMs ?? 5_000;
    this.bucket = accessBucketName(options.subjectPrefix);
    this.stream = accessStreamName(options.subjectPrefix);
    this.js = jetstream(options.nc);
    this.readiness = new Promise<void>((resolve, reject) => {
      this.markReady = resolve;
      this.failReady = reject;
    });
    // Handled here so a reader stopped before it was ready never raises an unhandled rejection.
    this.readiness.catch(() => undefined);
  }

  /**
   * Resolves once the initial values are loaded, or as soon as the bucket
   * turns out not to exist yet: a service must be able to start (and report
   * itself not ready) before IAM ever ran. The reader keeps looking and
   * becomes ready later; see `whenReady()`.
   */
  start(): Promise<void> {
    if (this.started === undefined) {
      let settle!: () => void;
      const firstMiss = new Promise<void>((resolve) => (settle = resolve));
      // Also settles if the loop ends without a bind (connection closed, reader stopped).
      this.running = this.follow(settle).finally(settle);
      this.started = Promise.race([this.readiness, firstMiss]);
    }
    return this.started;
  }

  get ready(): boolean {
    return this.isReady;
  }

  /** Rejects if the reader is stopped before it was ever ready. */
  whenReady(): Promise<void> {
    return this.readiness;
  }

  catalog(): CatalogSnapshot | undefined {
    return this.state.catalog;
  }

  principal(issuer: string, subject: string): PrincipalEntry | undefined {
    return this.state.principals.get(principalKey(issuer, subject));
  }

  policy(organizationId: string | null): PolicySnapshot | undefined {
    return this.state.policies.get(organizationId === null ? GLOBAL_POLICY_KEY : orgPolicyKey(organizationId));
  }

  apiKey(keyId: string): ApiKeyEntry | undefined {
    return this.state.apiKeys.get(API_KEY_KEY_PREFIX + keyId);
  }

  serviceIdentity(name: string): ServiceIdentityEntry | undefined {
    return this.state.services.get(SERVICE_KEY_PREFIX + name);
  }

  heartbeat(): Heartbeat | undefined {
    return this.state.heartbeat;
  }

  /** Milliseconds since IAM's last heartbeat; null before the first. A heartbeat "from the future" (skew) is age 0. */
  ageMs(): number | null {
    if (this.state.heartbeat === undefined) return null;
    return Math.max(0, this.options.clock.nowMs() - this.state.heartbeatAtMs);
  }

  isFresh(): boolean {
    const age = this.ageMs();
    return this.isReady && age !== null && age <= this.options.maxAgeMs;
  }

  /** Called for changes after the initial load (the gateway drops subscriptions that lost access). */
  onPrincipalChange(listener: PrincipalChangeListener): () => void {
    this.principalListeners.add(listener);
    return () => this.principalListeners.delete(listener);
  }

  onCatalogChange(listener: CatalogChangeListener): () => void {
    this.catalogListeners.add(listener);
    return () => this.catalogListeners.delete(listener);
  }

  onApiKeyChange(listener: ApiKeyChangeListener): () => void {
    this.apiKeyListeners.add(listener);
    return () => this.apiKeyListeners.delete(listener);
  }

  onServiceIdentityChange(listener: ServiceIdentityChangeListener): () => void {
    this.serviceListeners.add(listener);
    return () => this.serviceListeners.delete(listener);
  }

  stats(): AccessModelStats {
    return {
      ready: this.isReady,
      principals: this.state.principals.size,
      policies: this.state.policies.size,
      apiKeys: this.state.apiKeys.size,
      serviceIdentities: this.state.services.size,
      catalogVersion: this.state.catalog?.version ?? null,
      heartbeatAgeMs: this.ageMs(),
      loadMs: this.loadMs,
      invalidValues: this.invalidValues,
      rebinds: this.rebinds,
    };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopping.abort();
    await this.stopWatches();
    await this.running;
    if (!this.isReady) this.failReady(new AppError('AUTH_READ_MODEL_STALE', 'Access model reader stopped before it was ready'));
  }

  /**
   * Binds, loads, follows; binds again from scratch if the watch is lost.
   * A fresh bind loads into a new state and swaps it in whole, so a reader
   * never serves a half-loaded model and keeps serving the old one meanwhile.
   */
  private async follow(settleStart: () => void): Promise<void> {
    const jsm = await jetstreamManager(this.options.nc, { checkAPI: false });
    let waitingLogged = false;
    while (!this.stopped && !this.options.nc.isClosed()) {
      const next = new ModelState();
      const began = performance.now();
      let created: string;
      try {
        created = (await jsm.streams.info(this.stream)).created;
        this.watches = await this.watchAll(next);
      } catch (error) {
        if (this.stopped) return;
        settleStart();
        if (isStreamNotFound(error)) {
          if (!waitingLogged) this.options.logger.warn({ bucket: this.bucket }, 'access model bucket not found; waiting for iam');
          waitingLogged = true;
        } else {
          this.options.logger.warn({ err: error, bucket: this.bucket }, 'access model watch failed; retrying');
        }
        await this.pause(this.stopping.signal);
        continue;
      }
      const generation = new AbortController();
      const ended = AbortSignal.any([generation.signal, this.stopping.signal]);
      const lost = Promise.race([...this.watches.map((watch) => watch.lost), this.bucketReplaced(jsm, created, ended)]);
      const outcome = await Promise.race([
        Promise.all(this.watches.map((watch) => watch.loaded)).then(() => 'loaded' as const),
        lost,
        this.stoppedSignal(),
      ]);
      if (outcome === 'loaded') {
        this.loadMs = Math.round(performance.now() - began);
        this.activate(next);
        this.options.logger.info({ bucket: this.bucket, principals: next.principals.size, loadMs: this.loadMs }, 'access model loaded');
        const reason = await Promise.race([lost, this.stoppedSignal()]);
        if (reason !== 'stopped') this.options.logger.warn({ bucket: this.bucket, reason }, 'access model watch lost; binding again');
      }
      generation.abort();
      await this.stopWatches();
      if (this.stopped) return;
      this.rebinds += 1;
      waitingLogged = false;
      await this.pause(this.stopping.signal);
    }
  }

  /**
   * A watch on a deleted bucket hears nothing, and notices only after its
   * consumer misses heartbeats (a minute and more); one on a bucket deleted
   * and recreated could even resume at a sequence that means nothing there.
   * Silence shows as staleness, so a stale reader checks that the bucket is
   * still the one it bound to (the stream's creation time names it) and binds
   * again if not. Resolves only when it finds a reason to.
   */
  private async bucketReplaced(jsm: JetStreamManager, created: string, ended: AbortSignal): Promise<string> {
    while (!ended.aborted) {
      await this.pause(ended, this.verifyBucketEveryMs);
      if (ended.aborted || this.isFresh()) continue;
      try {
        if ((await jsm.streams.info(this.stream)).created !== created) return 'bucket replaced';
      } catch (error) {
        if (isStreamNotFound(error)) return 'bucket not found';
        this.options.logger.warn({ err: error, bucket: this.bucket }, 'access model bucket check failed');
      }
    }
    return new Promise<string>(() => undefined);
  }

  /**
   * One watch per key family: nats-server 2.9 has no multi-filter consumers
   * (2.10), and a reader that needs no principals must not stream 100,000 of them.
   */
  private async watchAll(target: ModelState): Promise<KeyWatch[]> {
    const patterns = this.keys === 'all' ? ['>'] : [CATALOG_KEY, HEARTBEAT_KEY, `${POLICY_KEY_PREFIX}>`, `${SERVICE_KEY_PREFIX}>`];
    const started = await Promise.allSettled(
      patterns.map((key) =>
        watchKeys({
          js: this.js,
          stream: this.stream,
          bucket: this.bucket,
          key,
          logger: this.options.logger,
          onRecord: (record) => this.apply(target, record),
        }),
      ),
    );
    const watches = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const failure = started.find((result) => result.status === 'rejected');
    if (failure === undefined) return watches;
    await Promise.all(watches.map((watch) => watch.stop()));
    throw failure.reason;
  }

  private async stopWatches(): Promise<void> {
    const watches = this.watches;
    this.watches = [];
    await Promise.all(watches.map((watch) => watch.stop()));
  }

  private stoppedSignal(): Promise<'stopped'> {
    const signal = this.stopping.signal;
    if (signal.aborted) return Promise.resolve('stopped');
    return new Promise((resolve) => signal.addEventListener('abort', () => resolve('stopped'), { once: true }));
  }

  /** Sleeps, cut short by `signal`. */
  private async pause(signal: AbortSignal, ms = this.bindRetryMs): Promise<void> {
    await sleep(ms, undefined, { signal }).catch(() => undefined);
  }

  /** Swaps a freshly loaded state in; after a rebind, tells listeners what changed while we were away. */
  private activate(next: ModelState): void {
    const previous = this.state;
    this.state = next;
    const wasReady = this.isReady;
    this.isReady = true;
    this.markReady();
    if (!wasReady) return;
    if (next.catalog !== undefined && !sameSnapshot(next.catalog, previous.catalog)) this.notifyCatalog(next.catalog);
    for (const [key, entry] of next.principals) {
      const before = previous.principals.get(key);
      if (before?.version !== entry.version) this.notifyPrincipal(entry, before);
    }
    for (const [key, before] of previous.principals) {
      if (!next.principals.has(key)) this.notifyPrincipal(holdingNothing(before), before);
    }
    notifyDifferences(previous.apiKeys, next.apiKeys, API_KEY_KEY_PREFIX, (id, entry) => this.notifyEntry(this.apiKeyListeners, id, entry));
    notifyDifferences(previous.services, next.services, SERVICE_KEY_PREFIX, (name, entry) => this.notifyEntry(this.serviceListeners, name, entry));
  }

  /** Applies one record to `target`; listeners hear of it only when `target` is the state being served. */
  private apply(target: ModelState, record: KeyRecord): void {
    const live = target === this.state;
    if (record.key === HEARTBEAT_KEY) {
      if (record.removed) {
        target.heartbeat = undefined;
        return;
      }
      const beat = this.parse(record, heartbeatSchema);
      if (beat === undefined) return;
      target.heartbeat = beat;
      target.heartbeatAtMs = Date.parse(beat.at);
    } else if (record.key === CATALOG_KEY) {
      if (record.removed) {
        target.catalog = undefined;
        return;
      }
      const catalog = this.parse(record, catalogSnapshotSchema);
      if (catalog === undefined) return;
      target.catalog = catalog;
      if (live) this.notifyCatalog(catalog);
    } else if (record.key.startsWith(PRINCIPAL_KEY_PREFIX)) {
      this.applyPrincipal(target, record, live);
    } else if (record.key.startsWith(API_KEY_KEY_PREFIX)) {
      this.applyEntry(target.apiKeys, record, apiKeyEntrySchema, API_KEY_KEY_PREFIX, live ? this.apiKeyListeners : undefined);
    } else if (record.key.startsWith(SERVICE_KEY_PREFIX)) {
      this.applyEntry(target.services, record, serviceIdentityEntrySchema, SERVICE_KEY_PREFIX, live ? this.serviceListeners : undefined);
    } else if (record.key.startsWith(POLICY_KEY_PREFIX)) {
      if (record.removed) {
        target.policies.delete(record.key);
        return;
      }
      const policy = this.parse(record, policySnapshotSchema);
      if (policy !== undefined) target.policies.set(record.key, policy);
    } else {
      // A newer IAM may publish keys this reader does not know yet; they are not ours to judge.
      this.options.logger.debug({ key: record.key }, 'access model key ignored');
    }
  }

  private applyPrincipal(target: ModelState, record: KeyRecord, live: boolean): void {
    const previous = target.principals.get(record.key);
    if (record.removed) {
      if (previous === undefined) return;
      target.principals.delete(record.key);
      if (live) this.notifyPrincipal(holdingNothing(previous), previous);
      return;
    }
    const parsed = this.parse(record, principalEntrySchema);
    if (parsed === undefined) return;
    const entry = this.strings.principal(parsed);
    target.principals.set(record.key, entry);
    if (live) this.notifyPrincipal(entry, previous);
  }

  /** Keys and service identities: replaced whole, removed on delete; listeners only for the served state. */
  private applyEntry<T>(
    entries: Map<string, T>,
    record: KeyRecord,
    schema: z.ZodType<T>,
    prefix: string,
    listeners: Set<(id: string, entry: T | undefined) => void> | undefined,
  ): void {
    const id = record.key.slice(prefix.length);
    if (record.removed) {
      if (!entries.delete(record.key)) return;
      if (listeners) this.notifyEntry(listeners, id, undefined);
      return;
    }
    const entry = this.parse(record, schema);
    if (entry === undefined) return;
    entries.set(record.key, entry);
    if (listeners) this.notifyEntry(listeners, id, entry);
  }

  private notifyEntry<T>(listeners: Set<(id: string, entry: T | undefined) => void>, id: string, entry: T | undefined): void {
    for (const listener of listeners) {
      try {
        listener(id, entry);
      } catch (error) {
        this.options.logger.error({ err: error, id }, 'access model change listener failed');
      }
    }
  }

  /** A value that fails its schema is logged and skipped: the previous one stays, nothing crashes. */
  private parse<T>(record: KeyRecord, schema: z.ZodType<T>): T | undefined {
    let json: unknown;
    try {
      json = JSON.parse(DECODER.decode(record.data));
    } catch (error) {
      this.invalid(record, [error instanceof Error ? error.message : 'not JSON']);
      return undefined;
    }
    const result = schema.safeParse(json);
    if (result.success) return result.data;
    this.invalid(
      record,
      result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`),
    );
    return undefined;
  }

  private invalid(record: KeyRecord, issues: string[]): void {
    this.invalidValues += 1;
    this.options.logger.warn({ key: record.key, revision: record.revision, issues: issues.slice(0, 5) }, 'access model value invalid; ignored');
  }

  private notifyPrincipal(entry: PrincipalEntry, previous: PrincipalEntry | undefined): void {
    for (const listener of this.principalListeners) {
      try {
        listener(entry, previous);
      } catch (error) {
        this.options.logger.error({ err: error, userId: entry.userId }, 'principal change listener failed');
      }
    }
  }

  private notifyCatalog(catalog: CatalogSnapshot): void {
    for (const listener of this.catalogListeners) {
      try {
        listener(catalog);
      } catch (error) {
        this.options.logger.error({ err: error }, 'catalog change listener failed');
      }
    }
  }
}

const DECODER = new TextDecoder();

function sameSnapshot(a: CatalogSnapshot, b: CatalogSnapshot | undefined): boolean {
  return b !== undefined && a.version === b.version && a.publishedAt === b.publishedAt;
}

/** After a rebind: every entry that changed, appeared or vanished while the reader was away. */
function notifyDifferences<T extends { version: number }>(
  previous: Map<string, T>,
  next: Map<string, T>,
  prefix: string,
  notify: (id: string, entry: T | undefined) => void,
): void {
  for (const [key, entry] of next) {
    if (previous.get(key)?.version !== entry.version) notify(key.slice(prefix.length), entry);
  }
  for (const key of previous.keys()) {
    if (!next.has(key)) notify(key.slice(prefix.length), undefined);
  }
}

/** A principal whose entry was removed: to the read model, someone who holds nothing. */
function holdingNothing(entry: PrincipalEntry): PrincipalEntry {
  return { ...entry, platformRoles: [], grants: [] };
}
