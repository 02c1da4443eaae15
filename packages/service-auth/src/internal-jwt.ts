import { randomUUID, sign } from 'node:crypto';
import { errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';
import { AppError } from '@aifactory/errors';
import { systemClock, type Clock } from '@aifactory/clock';
import { grantSchema, PLATFORM_ROLES, type Principal } from './principal.js';
import type { SigningKey, VerificationKeySet } from './keys.js';

/** Bumped when the claim layout changes, so a subgraph can refuse what it cannot read. */
export const INTERNAL_JWT_VERSION = 1;
/** ARCHITECTURE.md, Decisions: Internal JWT: exp <= 60 s. */
export const INTERNAL_JWT_MAX_TTL_SECONDS = 60;
const ALGORITHM = 'EdDSA';

const actorClaimSchema: z.ZodType<ActorClaim> = z.lazy(() =>
  z.object({ sub: z.string().min(1), act: actorClaimSchema.optional() }),
);
/** RFC 8693 `act`: the service acting on the subject's behalf, possibly nested. */
export interface ActorClaim {
  sub: string;
  act?: ActorClaim | undefined;
}

const claimsSchema = z.object({
  iss: z.string().min(1),
  aud: z.string().min(1),
  sub: z.string().min(1),
  iat: z.number(),
  exp: z.number(),
  ver: z.literal(INTERNAL_JWT_VERSION),
  ptype: z.enum(['user', 'service_account', 'service']),
  email: z.string().optional(),
  name: z.string().optional(),
  roles: z.array(z.enum(PLATFORM_ROLES)),
  grants: z.array(grantSchema),
  akid: z.string().optional(),
  proj: z.string().optional(),
  org: z.string().optional(),
  dept: z.string().optional(),
  scopes: z.array(z.string()).optional(),
  rv: z.number().int().nonnegative().optional(),
  cid: z.string().min(1),
  act: actorClaimSchema.optional(),
});

export interface MintRequest {
  audience: string;
  principal: Principal;
  correlationId: string;
  actor?: ActorClaim;
}

export interface InternalTokenSignerOptions {
  issuer: string;
  key: SigningKey;
  ttlSeconds?: number;
  clock?: Clock;
}

function base64url(json: unknown): string {
  return Buffer.from(JSON.stringify(json)).toString('base64url');
}

export class InternalTokenSigner {
  private readonly encodedHeader: string;
  private readonly ttlSeconds: number;
  private readonly clock: Clock;

  constructor(private readonly options: InternalTokenSignerOptions) {
    this.encodedHeader = base64url({ alg: ALGORITHM, kid: options.key.kid, typ: 'JWT' });
    this.ttlSeconds = Math.min(options.ttlSeconds ?? 30, INTERNAL_JWT_MAX_TTL_SECONDS);
    this.clock = options.clock ?? systemClock;
  }

  /**
   * A fresh token for exactly one target subgraph (`aud`), so it cannot be
   * replayed elsewhere. Signed with node:crypto directly: the gateway mints
   * one per subgraph call, and a synchronous Ed25519 signature costs a fraction
   * of a WebCrypto round trip; any JOSE library verifies the result.
   */
  async mint(request: MintRequest): Promise<string> {
    const { principal } = request;
    const now = Math.floor(this.clock.nowMs() / 1000);
    const claims: JWTPayload & Record<string, unknown> = {
      iss: this.options.issuer,
      aud: request.audience,
      sub: principal.subject,
      iat: now,
      exp: now + this.ttlSeconds,
      jti: randomUUID(),
      ver: INTERNAL_JWT_VERSION,
      ptype: principal.type,
      roles: principal.platformRoles,
      grants: principal.grants,
      cid: request.correlationId,
    };
    if (principal.email !== undefined) claims.email = principal.email;
    if (principal.name !== undefined) claims.name = principal.name;
    if (principal.apiKeyId !== undefined) claims.akid = principal.apiKeyId;
    if (principal.projectId !== undefined) claims.proj = principal.projectId;
    if (principal.organizationId !== undefined) claims.org = principal.organizationId;
    if (principal.departmentId !== undefined) claims.dept = principal.departmentId;
    if (principal.scopes !== undefined) claims.scopes = principal.scopes;
    if (principal.registryVersion !== undefined) claims.rv = principal.registryVersion;
    if (request.actor !== undefined) claims.act = request.actor;
    const signingInput = `${this.encodedHeader}.${base64url(claims)}`;
    const signature = sign(null, Buffer.from(signingInput), this.options.key.privateKey).toString('base64url');
    return `${signingInput}.${signature}`;
  }
}

export interface VerifiedInternalCall {
  principal: Principal;
  issuer: string;
  correlationId: string;
  actor: ActorClaim | undefined;
}

export interface InternalTokenVerifierOptions {
  /** This service's own name: tokens minted for any other audience are refused. */
  audience: string;
  issuers: string[];
  keys: VerificationKeySet;
  clock?: Clock;
}

function unauthenticated(reason: string, cause?: unknown): AppError {
  return new AppError('INTERNAL_AUTH_UNAUTHENTICATED', 'A valid internal service token is required', {
    cause,
    details: { reason },
  });
}

export class InternalTokenVerifier {
  private readonly clock: Clock;

  constructor(private readonly options: InternalTokenVerifierOptions) {
    this.clock = options.clock ?? systemClock;
  }

  async verify(token: string | undefined): Promise<VerifiedInternalCall> {
    if (!token) throw unauthenticated('missing');
    const keys = this.options.keys;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(
        token,
        (header) => {
          const key = header.kid === undefined ? undefined : keys.get(header.kid);
          if (!key) throw new joseErrors.JWKSNoMatchingKey();
          return key;
        },
        {
          algorithms: [ALGORITHM],
          audience: this.options.audience,
          issuer: this.options.issuers,
          currentDate: this.clock.now(),
          maxTokenAge: INTERNAL_JWT_MAX_TTL_SECONDS,
          requiredClaims: ['iss', 'aud', 'sub', 'iat', 'exp'],
        },
      ));
    } catch (error) {
      throw unauthenticated(error instanceof joseErrors.JOSEError ? error.code : 'invalid', error);
    }
    const parsed = claimsSchema.safeParse(payload);
    if (!parsed.success) throw unauthenticated('claims', parsed.error);
    const claims = parsed.data;
    if (claims.exp - claims.iat > INTERNAL_JWT_MAX_TTL_SECONDS) throw unauthenticated('lifetime');
    const principal: Principal = {
      type: claims.ptype,
      subject: claims.sub,
      platformRoles: claims.roles,
      grants: claims.grants,
    };
    if (claims.email !== undefined) principal.email = claims.email;
    if (claims.name !== undefined) principal.name = claims.name;
    if (claims.akid !== undefined) principal.apiKeyId = claims.akid;
    if (claims.proj !== undefined) principal.projectId = claims.proj;
    if (claims.org !== undefined) principal.organizationId = claims.org;
    if (claims.dept !== undefined) principal.departmentId = claims.dept;
    if (claims.scopes !== undefined) principal.scopes = claims.scopes;
    if (claims.rv !== undefined) principal.registryVersion = claims.rv;
    return { principal, issuer: claims.iss, correlationId: claims.cid, actor: claims.act };
  }
}
