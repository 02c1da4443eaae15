import { randomUUID } from 'node:crypto';
import { AppError } from '@aifactory/errors';
import { systemClock, type Clock } from '@aifactory/clock';
import {
  CompactSigner,
  INTERNAL_JWT_MAX_TTL_SECONDS,
  INTERNAL_JWT_VERSION,
  MAX_ACTOR_CHAIN_DEPTH,
  RESERVED_SERVICE_NAMES,
  onBehalfOfClaims,
  type ActorClaim,
  type VerifiedInternalCall,
} from './internal-jwt.js';
import type { SigningKey, SigningKeySource } from './keys.js';
import type { OnBehalfOf } from './principal.js';
import type { ServiceIdentityRecord } from './service-identity.js';

/**
 * A platform service's own short-lived token for one call to another
 * service (issue 15, Service identity; seed 001 C2). Claim layout, beside
 * the internal JWT's `ver`, `iat`, `exp`, `jti` and `cid`:
 *
 * - `iss`: the calling service's name; its read-model entry `service.<name>`
 *   holds the public keys, scopes and audiences the target checks.
 * - `aud`: the one target service.
 * - `ptype: "service"`, `roles: []`, `grants: []`, `scopes`: the authority is
 *   the calling service and the scopes it asked for, a subset of its
 *   identity's scopes. Never a user's roles or grants.
 * - Acting for itself: `sub` = its own name, no `act`, no `obo`.
 * - Acting for someone (RFC 8693 section 4.1): `sub` = that party's subject,
 *   `obo` = what kind of party it is (`ptype`, and `akid`, `proj`, `org`,
 *   `dept` where known), `act` = `{ sub: <calling service>, act: <the
 *   caller's own act, if it was a service acting for the same party> }`:
 *   the outermost actor is the current one, nested ones acted before it.
 *
 * The target's principal is `{ type: 'service', subject: <calling service>,
 * scopes, onBehalfOf: { type, subject, ... }, actorChain: [calling service,
 * earlier services...] }`: authorization uses the service's scopes, logs and
 * audit name both the service and the party it acted for.
 */

/** On whose behalf a service calls, and who acted before it. */
export interface Delegation {
  party: OnBehalfOf;
  /** The `act` of the call being served: services that acted for the party before this one. */
  priorActors?: ActorClaim;
}

/**
 * The delegation for calling on behalf of the caller of `call`: the party the
 * caller acted for if it was a service acting for someone, else the caller
 * itself (a user or API key through the gateway, a service on its own).
 */
export function delegationOf(call: VerifiedInternalCall): Delegation {
  const { principal } = call;
  if (principal.onBehalfOf !== undefined) {
    return call.actor === undefined ? { party: principal.onBehalfOf } : { party: principal.onBehalfOf, priorActors: call.actor };
  }
  const party: OnBehalfOf = { type: principal.type, subject: principal.subject };
  if (principal.apiKeyId !== undefined) party.apiKeyId = principal.apiKeyId;
  if (principal.projectId !== undefined) party.projectId = principal.projectId;
  if (principal.organizationId !== undefined) party.organizationId = principal.organizationId;
  if (principal.departmentId !== undefined) party.departmentId = principal.departmentId;
  return call.actor === undefined ? { party } : { party, priorActors: call.actor };
}

export interface ServiceTokenRequest {
  /** The one service the token is for. */
  audience: string;
  /** What this call needs: least privilege, each one held by this service's identity. */
  scopes: readonly string[];
  correlationId: string;
  /** Set when acting for someone; `delegationOf(ctx.call)` forwards the current caller. */
  onBehalfOf?: Delegation;
}

export interface ServiceTokenIssuerOptions {
  /** This service's name: `iss`, and the name of its service identity. */
  service: string;
  /** Its own Ed25519 credential, fixed or following its file (`openSigningKeyFile`). */
  key: SigningKey | SigningKeySource;
  /** At most 60 s; default 30 s. */
  ttlSeconds?: number;
  clock?: Clock;
  /**
   * This service's own identity as the read model has it, where known: a
   * request it could never pass (disabled, an audience or scope it lacks)
   * fails here, before any call. The target checks again regardless.
   */
  identity?: () => ServiceIdentityRecord | undefined;
}

function chainDepth(actor: ActorClaim | undefined): number {
  let depth = 0;
  for (let current = actor; current !== undefined; current = current.act) depth += 1;
  return depth;
}

export class ServiceTokenIssuer {
  private readonly signer: CompactSigner;
  private readonly ttlSeconds: number;
  private readonly clock: Clock;

  constructor(private readonly options: ServiceTokenIssuerOptions) {
    if (RESERVED_SERVICE_NAMES.includes(options.service)) throw new RangeError(`${options.service} is reserved and cannot be a service identity`);
    this.signer = new CompactSigner(options.key);
    this.ttlSeconds = Math.max(1, Math.min(options.ttlSeconds ?? 30, INTERNAL_JWT_MAX_TTL_SECONDS));
    this.clock = options.clock ?? systemClock;
  }

  get service(): string {
    return this.options.service;
  }

  async mint(request: ServiceTokenRequest): Promise<string> {
    const service = this.options.service;
    const scopes = [...new Set(request.scopes)];
    this.checkAgainstIdentity(request.audience, scopes);
    const now = Math.floor(this.clock.nowMs() / 1000);
    const delegation = request.onBehalfOf;
    const claims: Record<string, unknown> = {
      iss: service,
      aud: request.audience,
      sub: delegation?.party.subject ?? service,
      iat: now,
      exp: now + this.ttlSeconds,
      jti: randomUUID(),
      ver: INTERNAL_JWT_VERSION,
      ptype: 'service',
      roles: [],
      grants: [],
      scopes,
      cid: request.correlationId,
    };
    if (delegation !== undefined) {
      const act: ActorClaim = delegation.priorActors === undefined ? { sub: service } : { sub: service, act: delegation.priorActors };
      if (chainDepth(act) > MAX_ACTOR_CHAIN_DEPTH) {
        throw new AppError('INTERNAL_ERROR', `A call chain deeper than ${MAX_ACTOR_CHAIN_DEPTH} services is refused`, {
          details: { actors: chainDepth(act) },
        });
      }
      claims.act = act;
      claims.obo = onBehalfOfClaims(delegation.party);
    }
    return this.signer.sign(claims);
  }

  private checkAgainstIdentity(audience: string, scopes: readonly string[]): void {
    const identity = this.options.identity?.();
    if (identity === undefined) return;
    const service = this.options.service;
    if (identity.status !== 'active') {
      throw new AppError('INTERNAL_AUTH_SERVICE_DISABLED', `The service identity ${service} is disabled`, { details: { service } });
    }
    if (!identity.audiences.includes(audience)) {
      throw new AppError('INTERNAL_AUTH_AUDIENCE_NOT_ALLOWED', `The service ${service} may not call ${audience}`, { details: { service, audience } });
    }
    const notHeld = scopes.filter((scope) => !identity.scopes.includes(scope));
    if (notHeld.length > 0) {
      throw new AppError('INTERNAL_AUTH_SCOPE_NOT_ALLOWED', `The service ${service} does not hold ${notHeld.join(', ')}`, {
        details: { service, scopes: notHeld },
      });
    }
  }
}
