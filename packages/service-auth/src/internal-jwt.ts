import { randomUUID, sign, type KeyObject } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { z } from 'zod';
import { AppError } from '@aifactory/errors';
import { systemClock, type Clock } from '@aifactory/clock';
import { grantSchema, PLATFORM_ROLES, PRINCIPAL_TYPES, type OnBehalfOf, type Principal } from './principal.js';
import type { SigningKey, SigningKeySource, VerificationKeySet } from './keys.js';
import { ServiceKeyCache, type ServiceIdentityRecord } from './service-identity.js';

/** Bumped when the claim layout changes, so a subgraph can refuse what it cannot read. */
export const INTERNAL_JWT_VERSION = 1;
/** ARCHITECTURE.md, Decisions: Internal JWT: exp <= 60 s. */
export const INTERNAL_JWT_MAX_TTL_SECONDS = 60;
/** How many services may act in one chain (the calling one included): deeper chains are refused. */
export const MAX_ACTOR_CHAIN_DEPTH = 5;
/**
 * Never a service identity, whatever the read model says: a service token
 * can never pass as the gateway. The verifier's configured issuers are
 * reserved as well.
 */
export const RESERVED_SERVICE_NAMES: readonly string[] = ['gateway'];
const ALGORITHM = 'EdDSA';

const actorClaimSchema: z.ZodType<ActorClaim> = z.lazy(() =>
  z.object({ sub: z.string().min(1), act: actorClaimSchema.optional() }),
);
/** RFC 8693 `act`: the service acting on the subject's behalf; a nested `act` is the one that acted before it. */
export interface ActorClaim {
  sub: string;
  act?: ActorClaim | undefined;
}

/** RFC 8693 section 4.1 describes `sub`, not the actor: with `act`, this says what kind of party `sub` is. */
const onBehalfOfClaimSchema = z.object({
  ptype: z.enum(PRINCIPAL_TYPES),
  akid: z.string().optional(),
  proj: z.string().optional(),
  org: z.string().optional(),
  dept: z.string().optional(),
});

const claimsSchema = z.object({
  iss: z.string().min(1),
  aud: z.string().min(1),
  sub: z.string().min(1),
  iat: z.number(),
  exp: z.number(),
  ver: z.literal(INTERNAL_JWT_VERSION),
  ptype: z.enum(PRINCIPAL_TYPES),
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
  obo: onBehalfOfClaimSchema.optional(),
});
type Claims = z.infer<typeof claimsSchema>;

export interface MintRequest {
  audience: string;
  principal: Principal;
  correlationId: string;
  actor?: ActorClaim;
}

export interface InternalTokenSignerOptions {
  issuer: string;
  /** A fixed key, or one that follows its file (`openSigningKeyFile`) so a rotation needs no restart. */
  key: SigningKey | SigningKeySource;
  ttlSeconds?: number;
  clock?: Clock;
}

function base64url(json: unknown): string {
  return Buffer.from(JSON.stringify(json)).toString('base64url');
}

export function isSigningKeySource(key: SigningKey | SigningKeySource): key is SigningKeySource {
  return typeof (key as SigningKeySource).current === 'function';
}

/**
 * Signs with node:crypto directly: the gateway mints one token per subgraph
 * call, and a synchronous Ed25519 signature costs a fraction of a WebCrypto
 * round trip; any JOSE library verifies the result. The encoded header is
 * kept per kid, so a rotated key costs one more header, once.
 */
export class CompactSigner {
  private readonly key: () => SigningKey;
  private headers = new Map<string, string>();

  constructor(key: SigningKey | SigningKeySource) {
    this.key = isSigningKeySource(key) ? () => key.current() : () => key;
  }

  sign(claims: Record<string, unknown>): string {
    const key = this.key();
    let header = this.headers.get(key.kid);
    if (header === undefined) {
      // A long-lived process sees a handful of rotations; never let the map grow with them.
      if (this.headers.size >= 8) this.headers = new Map();
      header = base64url({ alg: ALGORITHM, kid: key.kid, typ: 'JWT' });
      this.headers.set(key.kid, header);
    }
    const signingInput = `${header}.${base64url(claims)}`;
    return `${signingInput}.${sign(null, Buffer.from(signingInput), key.privateKey).toString('base64url')}`;
  }
}

export class InternalTokenSigner {
  private readonly signer: CompactSigner;
  private readonly ttlSeconds: number;
  private readonly clock: Clock;

  constructor(private readonly options: InternalTokenSignerOptions) {
    this.signer = new CompactSigner(options.key);
    this.ttlSeconds = Math.min(options.ttlSeconds ?? 30, INTERNAL_JWT_MAX_TTL_SECONDS);
    this.clock = options.clock ?? systemClock;
  }

  /** A fresh token for exactly one target subgraph (`aud`), so it cannot be replayed elsewhere. */
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
    return this.signer.sign(claims);
  }
}

export interface VerifiedInternalCall {
  principal: Principal;
  /** `iss`: a configured platform issuer (`gateway`) or, for a service token, the calling service's name. */
  issuer: string;
  correlationId: string;
  /** RFC 8693 `act`: for a service token acting for someone, the calling service first, earlier actors nested. */
  actor: ActorClaim | undefined;
  /**
   * How the token was trusted: `platform` = signed with a key from the
   * configured files by a configured issuer (the gateway);
   * `service_identity` = a service's own credential, checked against its
   * read-model entry. Set by the verifier on every call.
   */
  credential?: 'platform' | 'service_identity';
}

export interface InternalTokenVerifierOptions {
  /** This service's own name: tokens minted for any other audience are refused. */
  audience: string;
  /** Issuers whose tokens are checked against `keys` (INTERNAL_JWT_ISSUERS); their names are never service identities. */
  issuers: string[];
  keys: VerificationKeySet;
  /**
   * The service identity named `name` as IAM's read model has it now
   * (`accessModel.serviceIdentity`). Asked on every verification, so a
   * disabled identity is refused from the moment its entry arrives. Left
   * out, only the configured issuers are accepted.
   */
  serviceIdentities?: (name: string) => ServiceIdentityRecord | undefined;
  clock?: Clock;
}

function unauthenticated(reason: string, cause?: unknown): AppError {
  return new AppError('INTERNAL_AUTH_UNAUTHENTICATED', 'A valid internal service token is required', {
    cause,
    details: { reason },
  });
}

function serviceDisabled(service: string): AppError {
  return new AppError('INTERNAL_AUTH_SERVICE_DISABLED', `The service identity ${service} is disabled`, { details: { service } });
}

function actorChainOf(actor: ActorClaim | undefined): string[] {
  const chain: string[] = [];
  for (let current = actor; current !== undefined; current = current.act) chain.push(current.sub);
  return chain;
}

export class InternalTokenVerifier {
  private readonly clock: Clock;
  private readonly reserved: ReadonlySet<string>;
  private readonly serviceKeys = new ServiceKeyCache();

  constructor(private readonly options: InternalTokenVerifierOptions) {
    this.clock = options.clock ?? systemClock;
    this.reserved = new Set([...RESERVED_SERVICE_NAMES, ...options.issuers]);
  }

  /** Drops what is cached for a service's keys (its read-model entry changed). Never needed for correctness. */
  forgetService(name: string): void {
    this.serviceKeys.forget(name);
  }

  async verify(token: string | undefined): Promise<VerifiedInternalCall> {
    if (!token) throw unauthenticated('missing');
    let issuer: unknown;
    try {
      // Unverified: only to choose which keys may have signed it; everything is verified below.
      issuer = decodeJwt(token).iss;
    } catch (error) {
      throw unauthenticated('malformed', error);
    }
    if (typeof issuer === 'string' && this.options.issuers.includes(issuer)) return this.verifyPlatformToken(token);
    if (typeof issuer === 'string' && this.options.serviceIdentities !== undefined && !this.reserved.has(issuer)) {
      return this.verifyServiceToken(token, issuer, this.options.serviceIdentities);
    }
    throw unauthenticated('issuer');
  }

  private async verifyPlatformToken(token: string): Promise<VerifiedInternalCall> {
    const keys = this.options.keys;
    const claims = await this.verifiedClaims(token, this.options.issuers, async (kid) => {
      let key = kid === undefined ? undefined : keys.get(kid);
      // A kid published since the files were last read (a rotation): read them again, throttled by the set.
      if (key === undefined && kid !== undefined && keys.refresh !== undefined && (await keys.refresh())) key = keys.get(kid);
      return key;
    });
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
    return { principal, issuer: claims.iss, correlationId: claims.cid, actor: claims.act, credential: 'platform' };
  }

  /**
   * A service's own token (see service-token.ts for the layout), judged by
   * the service's read-model entry as it is at this moment: it must exist and
   * be active, hold the signing kid, list this service among its audiences
   * and hold every scope the token claims.
   */
  private async verifyServiceToken(
    token: string,
    service: string,
    lookup: (name: string) => ServiceIdentityRecord | undefined,
  ): Promise<VerifiedInternalCall> {
    const entry = lookup(service);
    if (entry === undefined) throw unauthenticated('unknown_service');
    if (entry.status !== 'active') throw serviceDisabled(service);
    const claims = await this.verifiedClaims(token, [service], async (kid) => {
      const listed = entry.keys.find((key) => key.kid === kid);
      return listed === undefined ? undefined : this.serviceKeys.keyFor(service, listed);
    });
    // Verification awaited: judge by the entry as it is now, so a disable that arrived meanwhile counts.
    const current = lookup(service);
    if (current === undefined) throw unauthenticated('unknown_service');
    if (current.status !== 'active') throw serviceDisabled(service);
    const kid = decodeProtectedHeader(token).kid;
    if (!current.keys.some((key) => key.kid === kid)) throw unauthenticated('unknown_kid');
    if (!current.audiences.includes(this.options.audience)) {
      throw new AppError('INTERNAL_AUTH_AUDIENCE_NOT_ALLOWED', `The service ${service} may not call ${this.options.audience}`, {
        details: { service, audience: this.options.audience },
      });
    }
    // A service's authority is its scopes, nothing else: no roles, no grants, and its own name as the actor.
    if (claims.ptype !== 'service' || claims.roles.length > 0 || claims.grants.length > 0) throw unauthenticated('claims');
    const actorChain = actorChainOf(claims.act);
    if (claims.act === undefined ? claims.sub !== service || claims.obo !== undefined : claims.act.sub !== service || claims.obo === undefined) {
      throw unauthenticated('claims');
    }
    if (actorChain.length > MAX_ACTOR_CHAIN_DEPTH) throw unauthenticated('actor_chain');
    const scopes = claims.scopes ?? [];
    const notAllowed = scopes.filter((scope) => !current.scopes.includes(scope));
    if (notAllowed.length > 0) {
      throw new AppError('INTERNAL_AUTH_SCOPE_NOT_ALLOWED', `The service ${service} does not hold ${notAllowed.join(', ')}`, {
        details: { service, scopes: notAllowed },
      });
    }
    const principal: Principal = { type: 'service', subject: service, platformRoles: [], grants: [], scopes };
    if (claims.rv !== undefined) principal.registryVersion = claims.rv;
    if (claims.obo !== undefined) {
      principal.onBehalfOf = onBehalfOfFromClaims(claims.sub, claims.obo);
      principal.actorChain = actorChain;
    }
    return { principal, issuer: service, correlationId: claims.cid, actor: claims.act, credential: 'service_identity' };
  }

  private async verifiedClaims(
    token: string,
    issuers: string[],
    keyFor: (kid: string | undefined) => Promise<KeyObject | undefined>,
  ): Promise<Claims> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(
        token,
        async (header) => {
          const key = await keyFor(header.kid);
          if (!key) throw new joseErrors.JWKSNoMatchingKey();
          return key;
        },
        {
          algorithms: [ALGORITHM],
          audience: this.options.audience,
          issuer: issuers,
          currentDate: this.clock.now(),
          maxTokenAge: INTERNAL_JWT_MAX_TTL_SECONDS,
          requiredClaims: ['iss', 'aud', 'sub', 'iat', 'exp'],
        },
      ));
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw unauthenticated(error instanceof joseErrors.JOSEError ? error.code : 'invalid', error);
    }
    const parsed = claimsSchema.safeParse(payload);
    if (!parsed.success) throw unauthenticated('claims', parsed.error);
    if (parsed.data.exp - parsed.data.iat > INTERNAL_JWT_MAX_TTL_SECONDS) throw unauthenticated('lifetime');
    return parsed.data;
  }
}

function onBehalfOfFromClaims(subject: string, obo: z.infer<typeof onBehalfOfClaimSchema>): OnBehalfOf {
  const party: OnBehalfOf = { type: obo.ptype, subject };
  if (obo.akid !== undefined) party.apiKeyId = obo.akid;
  if (obo.proj !== undefined) party.projectId = obo.proj;
  if (obo.org !== undefined) party.organizationId = obo.org;
  if (obo.dept !== undefined) party.departmentId = obo.dept;
  return party;
}

/** The claims that describe `sub` when a service acts for it. */
export function onBehalfOfClaims(party: OnBehalfOf): z.infer<typeof onBehalfOfClaimSchema> {
  const obo: z.infer<typeof onBehalfOfClaimSchema> = { ptype: party.type };
  if (party.apiKeyId !== undefined) obo.akid = party.apiKeyId;
  if (party.projectId !== undefined) obo.proj = party.projectId;
  if (party.organizationId !== undefined) obo.org = party.organizationId;
  if (party.departmentId !== undefined) obo.dept = party.departmentId;
  return obo;
}
