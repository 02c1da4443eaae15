import { AppError } from '@aifactory/errors';

/**
 * The rules of an API key's lifetime (issue 15), from the effective policy
 * of its project: a default and a maximum lifetime, whether a key may never
 * expire (and then only for a platform admin), and the longest grace a
 * rotation may give the old key. Pure, so the rules are tested on their own.
 */
export const DEFAULT_TTL_KEY = 'platform.api_keys.default_ttl';
export const MAX_TTL_KEY = 'platform.api_keys.max_ttl';
export const ALLOW_NO_EXPIRY_KEY = 'platform.api_keys.allow_no_expiry';
export const MAX_ROTATION_GRACE_KEY = 'platform.api_keys.max_rotation_grace';

export interface KeyLifetimePolicy {
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
  allowNoExpiry: boolean;
  maxRotationGraceSeconds: number;
}

export interface ExpiryRequest {
  /** An explicit expiry; at most the policy's maximum lifetime from now. */
  expiresAt?: Date | null;
  /** A key that never expires: a platform admin, where policy allows it. */
  neverExpires?: boolean | null;
}

/** Weeks, days, hours, minutes, seconds: the duration form policy values take (authz policy-values.ts). */
const DURATION = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/;
const UNIT_SECONDS = [7 * 86_400, 86_400, 3_600, 60, 1];

export function durationSeconds(key: string, value: unknown): number {
  const match = typeof value === 'string' ? DURATION.exec(value) : null;
  if (match === null || value === 'P' || (value as string).endsWith('T')) {
    // Policy values are validated when set; one that is not a duration is a defect, not the caller's error.
    throw new AppError('INTERNAL_ERROR', `Policy ${key} is not a duration`, { details: { key } });
  }
  return match.slice(1).reduce((sum, part, index) => sum + (part === undefined ? 0 : Number(part) * UNIT_SECONDS[index]!), 0);
}

function invalidExpiry(message: string, details: Record<string, unknown>): AppError {
  return new AppError('IAM_API_KEY_EXPIRY_INVALID', message, { details });
}

/** The expiry a new key gets: the one asked for within the maximum, none where allowed, else the default (never past the maximum). */
export function keyExpiry(request: ExpiryRequest, policy: KeyLifetimePolicy, caller: { platformAdmin: boolean }, now: Date): Date | null {
  const latest = new Date(now.getTime() + policy.maxTtlSeconds * 1000);
  if (request.neverExpires === true) {
    if (request.expiresAt != null) throw invalidExpiry('Name an expiry or ask for none, not both', { reason: 'both' });
    if (!caller.platformAdmin) throw invalidExpiry('Only a platform admin may create a key that never expires', { reason: 'platform_admin_only' });
    if (!policy.allowNoExpiry) {
      throw invalidExpiry('Policy requires every key here to expire', { reason: 'policy_forbids', key: ALLOW_NO_EXPIRY_KEY });
    }
    return null;
  }
  if (request.expiresAt != null) {
    if (request.expiresAt.getTime() <= now.getTime()) throw invalidExpiry('The expiry must be in the future', { reason: 'past' });
    if (request.expiresAt.getTime() > latest.getTime()) {
      throw invalidExpiry(`A key may live at most ${policy.maxTtlSeconds} seconds here`, { reason: 'too_late', key: MAX_TTL_KEY, latest: latest.toISOString() });
    }
    return request.expiresAt;
  }
  return new Date(now.getTime() + Math.min(policy.defaultTtlSeconds, policy.maxTtlSeconds) * 1000);
}

/** When the old key of a rotation stops: the grace asked for, at most the policy's. */
export function rotationGraceUntil(graceSeconds: number, policy: KeyLifetimePolicy, now: Date): Date {
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > policy.maxRotationGraceSeconds) {
    throw new AppError('IAM_API_KEY_GRACE_INVALID', `The grace must be between 0 and ${policy.maxRotationGraceSeconds} seconds here`, {
      details: { key: MAX_ROTATION_GRACE_KEY, maxSeconds: policy.maxRotationGraceSeconds },
    });
  }
  return new Date(now.getTime() + graceSeconds * 1000);
}
