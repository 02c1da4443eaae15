import { createRemoteJWKSet, jwksCache, jwtVerify, errors as joseErrors, type ExportedJWKSCache, type JWKSCacheInput } from 'jose';
import { z } from 'zod';
import { AppError } from '@aifactory/errors';
import { systemClock, type Clock } from '@aifactory/clock';
import type { Logger } from '@aifactory/logging';

export const ASSERTION_HEADER = 'x-pomerium-jwt-assertion';

const identityClaims = z.object({
  iss: z.string(),
  sub: z.string().min(1),
  /** Seconds since the epoch; a subscription is ended when its assertion expires. */
  exp: z.number(),
  email: z.string().optional(),
  /** Pomerium passes the identity provider's claim; an invitation is claimed only by a verified email. */
  email_verified: z.boolean().default(false),
  name: z.string().optional(),
  groups: z.array(z.string()).default([]),
});
export type EdgeIdentity = z.infer<typeof identityClaims>;

export interface PomeriumVerifierOptions {
  jwksUrl: string;
  issuer: string;
  audience: string[];
  algorithms: string[];
  cooldownMs: number;
  timeoutMs: number;
  logger: Logger;
  clock?: Clock;
}

function unauthenticated(reason: string, cause?: unknown): AppError {
  return new AppError('AUTH_UNAUTHENTICATED', 'Authentication required', { cause, details: { reason } });
}

/**
 * Verifies Pomerium's signed assertion against its JWKS. A key published
 * later under a new `kid` is fetched on first sight (after jose's cooldown),
 * so rotation needs no restart.
 */
/** A verified assertion is trusted again for at most this long (or until it expires, if sooner). */
const VERIFIED_REUSE_MS = 60_000;
const VERIFIED_CACHE_ENTRIES = 10_000;

export class PomeriumVerifier {
  private readonly jwks;
  /** jose records here when it last fetched the key set successfully (`uat`, epoch ms). */
  private readonly jwksState: JWKSCacheInput = {};
  private loaded = false;
  private readonly clock: Clock;
  /**
   * Pomerium sends the same assertion on every request of a session; checking
   * its ES256 signature once instead of per request is most of the edge's
   * CPU. Keyed by the whole token, so any changed byte misses.
   */
  private readonly verified = new Map<string, { identity: EdgeIdentity; untilMs: number }>();

  constructor(private readonly options: PomeriumVerifierOptions) {
    this.jwks = createRemoteJWKSet(new URL(options.jwksUrl), {
      cooldownDuration: options.cooldownMs,
      timeoutDuration: options.timeoutMs,
      [jwksCache]: this.jwksState,
    });
    this.clock = options.clock ?? systemClock;
  }

  /** True once the key set has been fetched at least once: readiness depends on it. */
  get ready(): boolean {
    return this.loaded;
  }

  /** Milliseconds since the key set was last fetched; null before the first fetch. */
  jwksAgeMs(): number | null {
    // jose stamps `uat` with Date.now(), so its age is measured on the same clock.
    const { uat } = this.jwksState as Partial<ExportedJWKSCache>;
    return uat === undefined ? null : Math.max(0, Date.now() - uat);
  }

  /** Fetches the key set until it succeeds; resolves on the first success. */
  async load(retryMs = 2_000, signal?: AbortSignal): Promise<void> {
    while (!this.loaded && !signal?.aborted) {
      try {
        await this.jwks.reload();
        this.loaded = true;
      } catch (error) {
        this.options.logger.warn({ err: error, jwksUrl: this.options.jwksUrl }, 'could not fetch the identity provider key set; retrying');
        await new Promise((resolve) => setTimeout(resolve, retryMs).unref());
      }
    }
  }

  async verify(assertion: string | undefined): Promise<EdgeIdentity> {
    if (!assertion) throw unauthenticated('missing');
    const nowMs = this.clock.nowMs();
    const known = this.verified.get(assertion);
    if (known && known.untilMs > nowMs) return known.identity;
    if (known) this.verified.delete(assertion);
    try {
      const { payload } = await jwtVerify(assertion, this.jwks, {
        algorithms: this.options.algorithms,
        issuer: this.options.issuer,
        audience: this.options.audience,
        requiredClaims: ['iss', 'sub', 'aud', 'exp'],
        currentDate: this.clock.now(),
      });
      this.loaded = true;
      const claims = identityClaims.safeParse(payload);
      if (!claims.success) throw unauthenticated('claims', claims.error);
      this.remember(assertion, claims.data, Math.min((payload.exp ?? 0) * 1000, nowMs + VERIFIED_REUSE_MS));
      return claims.data;
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw unauthenticated(error instanceof joseErrors.JOSEError ? error.code : 'invalid', error);
    }
  }

  private remember(assertion: string, identity: EdgeIdentity, untilMs: number): void {
    if (this.verified.size >= VERIFIED_CACHE_ENTRIES) {
      const oldest = this.verified.keys().next();
      if (!oldest.done) this.verified.delete(oldest.value);
    }
    this.verified.set(assertion, { identity, untilMs });
  }
}
