import type { ApiKeyEntry } from '@aifactory/authz';
import type { Clock } from '@aifactory/clock';
import { AppError, type ErrorCode } from '@aifactory/errors';
import type { Logger } from '@aifactory/logging';
import { parseApiKey, type Principal } from '@aifactory/service-auth';
import type { Counter, ServiceMetrics } from '@aifactory/telemetry';
import type { ApiKeyFailureLimit } from './api-key-failure-limit.js';
import { ApiKeyNegativeCache } from './api-key-negative-cache.js';

/** What the authenticator reads of the access read model (an AccessModelReader). */
export interface ApiKeyReadModel {
  isFresh(): boolean;
  ageMs(): number | null;
  apiKey(keyId: string): ApiKeyEntry | undefined;
  onApiKeyChange(listener: (keyId: string, entry: ApiKeyEntry | undefined) => void): () => void;
}

/** What it needs of the pepper (a PepperRing from @aifactory/service-auth). */
export interface ApiKeyPepper {
  readonly currentVersion: number;
  has(version: number): boolean;
  ensure(version: number): Promise<boolean>;
  verify(secret: string, version: number, expectedHash: string): boolean;
  hash(secret: string, version?: number): string;
}

/** Why a key request was refused; a label on /metrics and the audit record's reason. */
export const API_KEY_REFUSAL_REASONS = ['unknown', 'revoked', 'expired', 'rotated_out', 'suspended', 'stale', 'rate_limited'] as const;
export type ApiKeyRefusalReason = (typeof API_KEY_REFUSAL_REASONS)[number];

/** The reasons that judge the key itself; they are cached, counted against the source and audited. */
type KeyVerdict = Exclude<ApiKeyRefusalReason, 'stale' | 'rate_limited'>;

export interface ApiKeyRefusal {
  reason: ApiKeyRefusalReason;
  /** The key id the text named; undefined when it was no well-formed key. */
  keyId: string | undefined;
  /** Only when the secret verified: then, and only then, the refusal may say whose key it was. */
  entry: ApiKeyEntry | undefined;
  source: string;
  correlationId: string;
}

export interface ApiKeyUse {
  entry: ApiKeyEntry;
  atMs: number;
  /**
   * The secret's hash under the current pepper, when the entry's hash is of
   * an older version (issue 15: "a key is re-hashed with the new pepper when
   * it is next used"). A function so the HMAC is spent only when reported.
   */
  rehash?: () => { pepperVersion: number; hash: string };
}

export interface ApiKeyAuthentication {
  principal: Principal;
  keyId: string;
  /** When the key stops working by itself (expiry or the end of its rotation grace), epoch ms; Infinity when never. */
  endsAtMs: number;
}

export interface ApiKeyAuthenticatorOptions {
  model: ApiKeyReadModel;
  pepper: ApiKeyPepper;
  /** API_KEY_MODEL_MAX_AGE_MS: key requests fail closed past it. */
  maxAgeMs: number;
  failureLimit: ApiKeyFailureLimit;
  negativeCacheMs: number;
  clock: Clock;
  logger: Logger;
  metrics?: ServiceMetrics;
  /** Each refusal, for the audit trail; never throws back. */
  onRefused?(refusal: ApiKeyRefusal): void;
  /** Each accepted use, for last-use reports and re-hashing. */
  onAccepted?(use: ApiKeyUse): void;
}

/** One answer for every key that does not verify: whether it exists, and whose it is, stays unsaid. */
const UNKNOWN_MESSAGE = 'The API key is not valid';
const VERDICTS: Record<KeyVerdict, { code: ErrorCode; message: string }> = {
  unknown: { code: 'AUTH_API_KEY_UNKNOWN', message: UNKNOWN_MESSAGE },
  revoked: { code: 'AUTH_API_KEY_REVOKED', message: 'This API key was revoked' },
  expired: { code: 'AUTH_API_KEY_EXPIRED', message: 'This API key has expired' },
  rotated_out: { code: 'AUTH_API_KEY_ROTATED_OUT', message: 'This API key was replaced by a rotation and its grace period is over' },
  suspended: { code: 'AUTH_API_KEY_SUSPENDED', message: "This API key's project is archived" },
};

/** Spent on keys that name no entry, so an unknown key id takes as long as a wrong secret. */
const DUMMY_HASH = 'x'.repeat(43);

interface BuiltKey {
  principal: Principal;
  expiresAtMs: number;
  graceUntilMs: number;
}

interface CachedVerdict {
  reason: KeyVerdict;
  error: AppError;
  keyId: string | undefined;
  entry: ApiKeyEntry | undefined;
}

/**
 * `Authorization: Bearer <key>` (ARCHITECTURE.md, Decisions: Principal: when
 * a key is present it alone decides the principal). A request costs a parse
 * with its checksum, a map lookup and one HMAC; everything else is cached per
 * read-model entry. A key that does not verify is "unknown" whatever its id
 * names (issue 15: revoked, expired or rotated-out only when the secret
 * verifies), and an id with no entry spends the same HMAC.
 */
export class ApiKeyAuthenticator {
  private readonly built = new WeakMap<ApiKeyEntry, BuiltKey>();
  private readonly refusals: ApiKeyNegativeCache<CachedVerdict>;
  private readonly stopWatching: () => void;
  private readonly failures: Counter<'reason'> | undefined;
  private readonly validations: Counter<'outcome'> | undefined;
  private readonly cacheHits: Counter<never> | undefined;

  constructor(private readonly options: ApiKeyAuthenticatorOptions) {
    this.refusals = new ApiKeyNegativeCache<CachedVerdict>(options.negativeCacheMs);
    // A changed entry is judged afresh: a key created a moment ago, or a refusal that no longer holds.
    this.stopWatching = options.model.onApiKeyChange((keyId) => this.refusals.forgetKey(keyId));
    this.failures = options.metrics?.counter('aif_api_key_validation_failures_total', 'API key requests refused by the gateway, by reason', ['reason']);
    this.validations = options.metrics?.counter('aif_api_key_validations_total', 'API key requests judged by the gateway, by outcome (ok or refused)', ['outcome']);
    this.cacheHits = options.metrics?.counter('aif_api_key_negative_cache_hits_total', 'Refused API keys answered from the negative cache (no HMAC, no lookup)', []);
  }

  /** Throws AUTH_READ_MODEL_STALE when the keys are older than their budget (or the read model is stale at all). */
  requireFresh(): void {
    const ageMs = this.options.model.ageMs();
    if (this.options.model.isFresh() && ageMs !== null && ageMs <= this.options.maxAgeMs) return;
    throw new AppError('AUTH_READ_MODEL_STALE', 'API keys cannot be checked right now: the key data is out of date; retry shortly', {
      details: { ageMs, maxAgeMs: this.options.maxAgeMs },
    });
  }

  /** Judges the presented key text; resolves with the principal or rejects with the refusal. */
  async authenticate(presented: string, source: string, correlationId: string): Promise<ApiKeyAuthentication> {
    const waitSeconds = this.options.failureLimit.retryAfterSeconds(source);
    if (waitSeconds > 0) throw this.tooManyFailures(waitSeconds, parseApiKey(presented)?.keyId, source, correlationId);
    try {
      this.requireFresh();
    } catch (error) {
      this.count('stale');
      throw error;
    }
    const nowMs = this.options.clock.nowMs();
    // While nothing was refused lately (the usual case) a good key costs no extra hash.
    let fingerprintOf: string | undefined;
    const fingerprint = () => (fingerprintOf ??= ApiKeyNegativeCache.fingerprint(presented));
    const cached = this.refusals.size === 0 ? undefined : this.refusals.get(fingerprint(), nowMs);
    if (cached !== undefined) {
      this.cacheHits?.inc();
      return this.refuse(cached, source, correlationId);
    }
    const parsed = parseApiKey(presented);
    if (parsed === null) return this.refuse(this.remember(fingerprint(), 'unknown', undefined, undefined, nowMs), source, correlationId);

    const entry = this.options.model.apiKey(parsed.keyId);
    // The usual case stays synchronous, so a known id and an unknown one take the same path to their one HMAC.
    if (entry === undefined || !(this.options.pepper.has(entry.pepperVersion) || (await this.pepperAfterRotation(entry)))) {
      this.options.pepper.verify(parsed.secret, this.options.pepper.currentVersion, DUMMY_HASH);
      return this.refuse(this.remember(fingerprint(), 'unknown', parsed.keyId, undefined, nowMs), source, correlationId);
    }
    if (!this.options.pepper.verify(parsed.secret, entry.pepperVersion, entry.hash)) {
      return this.refuse(this.remember(fingerprint(), 'unknown', parsed.keyId, undefined, nowMs), source, correlationId);
    }
    const built = this.build(entry);
    const verdict = standingOf(entry, built, nowMs);
    if (verdict !== undefined) return this.refuse(this.remember(fingerprint(), verdict, parsed.keyId, entry, nowMs), source, correlationId);

    this.validations?.inc({ outcome: 'ok' });
    if (this.options.onAccepted !== undefined) {
      const { pepper } = this.options;
      const { secret } = parsed;
      const current = pepper.currentVersion;
      this.options.onAccepted({
        entry,
        atMs: nowMs,
        ...(entry.pepperVersion < current ? { rehash: () => ({ pepperVersion: current, hash: pepper.hash(secret, current) }) } : {}),
      });
    }
    return { principal: built.principal, keyId: entry.keyId, endsAtMs: Math.min(built.expiresAtMs, built.graceUntilMs) };
  }

  /**
   * A key whose secret verified earlier (an open subscription), as the read
   * model has it now: its principal, or the refusal it would get. Freshness
   * is the caller's to check.
   */
  standing(keyId: string): ApiKeyAuthentication | AppError {
    const entry = this.options.model.apiKey(keyId);
    if (entry === undefined) return verdictError('unknown', keyId);
    const built = this.build(entry);
    const verdict = standingOf(entry, built, this.options.clock.nowMs());
    if (verdict !== undefined) return verdictError(verdict, keyId);
    return { principal: built.principal, keyId, endsAtMs: Math.min(built.expiresAtMs, built.graceUntilMs) };
  }

  close(): void {
    this.stopWatching();
  }

  /** The entry's pepper version, read from the file on first sight after a rotation. */
  private async pepperAfterRotation(entry: ApiKeyEntry): Promise<boolean> {
    const { pepper } = this.options;
    let held = false;
    try {
      held = await pepper.ensure(entry.pepperVersion);
    } catch (error) {
      this.options.logger.error({ err: error, keyId: entry.keyId, pepperVersion: entry.pepperVersion }, 'could not re-read the pepper file');
    }
    // Our configuration, not the caller's fault; still answered "unknown", because the secret could not be checked.
    if (!held) this.options.logger.error({ keyId: entry.keyId, pepperVersion: entry.pepperVersion }, 'API key hashed with a pepper version this gateway does not hold');
    return held;
  }

  private remember(fingerprint: string, reason: KeyVerdict, keyId: string | undefined, entry: ApiKeyEntry | undefined, nowMs: number): CachedVerdict {
    const verdict: CachedVerdict = { reason, error: verdictError(reason, keyId), keyId, entry };
    this.refusals.remember(fingerprint, keyId, verdict, nowMs);
    return verdict;
  }

  /** Every refusal of a key counts against its source; the one that goes over the budget is already answered 429. */
  private async refuse(verdict: CachedVerdict, source: string, correlationId: string): Promise<never> {
    this.options.onRefused?.({ reason: verdict.reason, keyId: verdict.keyId, entry: verdict.entry, source, correlationId });
    const waitSeconds = await this.options.failureLimit.failed(source);
    if (waitSeconds > 0) throw this.tooManyFailures(waitSeconds, verdict.keyId, source, correlationId, false);
    this.count(verdict.reason);
    throw verdict.error;
  }

  private tooManyFailures(waitSeconds: number, keyId: string | undefined, source: string, correlationId: string, audit = true): AppError {
    this.count('rate_limited');
    if (audit) this.options.onRefused?.({ reason: 'rate_limited', keyId, entry: undefined, source, correlationId });
    return new AppError('AUTH_TOO_MANY_FAILURES', 'Too many failed authentications from this address; retry after the time in Retry-After', {
      details: { retryAfterSeconds: waitSeconds },
    });
  }

  private count(reason: ApiKeyRefusalReason): void {
    this.failures?.inc({ reason });
    this.validations?.inc({ outcome: 'refused' });
  }

  /** Built once per entry object: the read model replaces an entry whole when it changes. */
  private build(entry: ApiKeyEntry): BuiltKey {
    let built = this.built.get(entry);
    if (built === undefined) {
      built = {
        principal: apiKeyPrincipal(entry),
        expiresAtMs: entry.expiresAt === null ? Number.POSITIVE_INFINITY : Date.parse(entry.expiresAt),
        graceUntilMs: entry.graceUntil === null ? Number.POSITIVE_INFINITY : Date.parse(entry.graceUntil),
      };
      this.built.set(entry, built);
    }
    return built;
  }
}

/** The service account a key speaks for, in its one project (plan-keys.md, Gateway). */
export function apiKeyPrincipal(entry: ApiKeyEntry): Principal {
  return {
    type: 'service_account',
    subject: entry.serviceAccountId,
    apiKeyId: entry.keyId,
    projectId: entry.projectId,
    organizationId: entry.organizationId,
    departmentId: entry.departmentId,
    scopes: [...entry.scopes],
    registryVersion: entry.registryVersion,
    platformRoles: [],
    grants: [],
  };
}

/** Why a verified key no longer works, if it does not; revocation first, then the project, then time. */
function standingOf(entry: ApiKeyEntry, built: BuiltKey, nowMs: number): KeyVerdict | undefined {
  switch (entry.status) {
    case 'revoked':
      return 'revoked';
    case 'project_archived':
      return 'suspended';
    case 'active':
      break;
    default: {
      const unexpected: never = entry.status;
      throw new RangeError(`unknown API key status ${String(unexpected)}`);
    }
  }
  if (built.expiresAtMs <= nowMs) return 'expired';
  if (built.graceUntilMs <= nowMs) return 'rotated_out';
  return undefined;
}

function verdictError(reason: KeyVerdict, keyId: string | undefined): AppError {
  const { code, message } = VERDICTS[reason];
  // The key id is not secret and tells operators which key; the secret never enters an error.
  return new AppError(code, message, { details: { keyId: keyId ?? null } });
}

/**
 * The API key in an Authorization header, if it carries one. Only the Bearer
 * scheme is ours; Pomerium's own programmatic tokens (`Bearer Pomerium-...`)
 * pass through to the assertion check.
 */
export function presentedApiKey(authorization: string | string[] | undefined): string | undefined {
  const value = Array.isArray(authorization) ? authorization[0] : authorization;
  if (value === undefined) return undefined;
  const match = /^\s*bearer(?:\s+(.*?))?\s*$/i.exec(value);
  if (match === null) return undefined;
  const token = match[1] ?? '';
  return token.startsWith('Pomerium-') ? undefined : token;
}
