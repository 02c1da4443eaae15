import { createRemoteJWKSet, jwtVerify, errors as joseErrors } from 'jose';
import { z } from 'zod';
import { AppError } from '@aifactory/errors';
import { systemClock, type Clock } from '@aifactory/clock';
import type { Logger } from '@aifactory/logging';

export const ASSERTION_HEADER = 'x-pomerium-jwt-assertion';

const identityClaims = z.object({
  iss: z.string(),
  sub: z.string().min(1),
  email: z.string().optional(),
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
export class PomeriumVerifier {
  private readonly jwks;
  private loaded = false;

  constructor(private readonly options: PomeriumVerifierOptions) {
    this.jwks = createRemoteJWKSet(new URL(options.jwksUrl), {
      cooldownDuration: options.cooldownMs,
      timeoutDuration: options.timeoutMs,
    });
  }

  /** True once the key set has been fetched at least once: readiness depends on it. */
  get ready(): boolean {
    return this.loaded;
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
    try {
      const { payload } = await jwtVerify(assertion, this.jwks, {
        algorithms: this.options.algorithms,
        issuer: this.options.issuer,
        audience: this.options.audience,
        requiredClaims: ['iss', 'sub', 'aud', 'exp'],
        currentDate: (this.options.clock ?? systemClock).now(),
      });
      this.loaded = true;
      const claims = identityClaims.safeParse(payload);
      if (!claims.success) throw unauthenticated('claims', claims.error);
      return claims.data;
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw unauthenticated(error instanceof joseErrors.JOSEError ? error.code : 'invalid', error);
    }
  }
}
