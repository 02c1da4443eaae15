import type { CatalogSnapshot, PrincipalEntry } from '@aifactory/authz';
import type { Clock } from '@aifactory/clock';
import { AppError } from '@aifactory/errors';
import type { Logger } from '@aifactory/logging';
import type { PlatformRole, Principal } from '@aifactory/service-auth';
import type { SignIn } from './iam-sign-in.js';
import type { EdgeIdentity } from './pomerium.js';
import { platformRolesFromGroups, principalFromEntry, type RoleGroups } from './principal.js';

/** What the resolver reads of the access read model (an AccessModelReader). */
export interface PrincipalReadModel {
  isFresh(): boolean;
  ageMs(): number | null;
  principal(issuer: string, subject: string): PrincipalEntry | undefined;
  catalog(): CatalogSnapshot | undefined;
}

export interface PrincipalResolverOptions {
  model: PrincipalReadModel;
  signIn: SignIn;
  roleGroups: RoleGroups;
  /** The freshness budget, reported with a refusal. */
  maxAgeMs: number;
  clock: Clock;
  logger: Logger;
  onSignIn?(outcome: 'ok' | 'failed'): void;
}

/** After a failed profile update, a known user is served from the read model this long before iam is asked again. */
const PROFILE_RETRY_MS = 10_000;

interface Built {
  entry: PrincipalEntry;
  catalogVersion: number | undefined;
  principal: Principal;
}

/**
 * Turns a verified edge identity into the principal the subgraphs see, from
 * the local copy of IAM's read model: a request costs map lookups, never a
 * call to IAM or a database (issue 14, Authorization). IAM is asked once per
 * identity, on first sight or when the assertion's profile changed, and its
 * answer serves until the read model has caught up with it.
 */
export class PrincipalResolver {
  private readonly pending = new Map<string, Promise<PrincipalEntry>>();
  /** Sign-in answers newer than the read model's entry; dropped once the entry reaches their version. */
  private readonly answered = new Map<string, PrincipalEntry>();
  /**
   * The profile last sent to iam per identity: iam may normalize what it
   * stores (an email's case), and the same profile is not sent again.
   */
  private readonly settledProfiles = new Map<string, string>();
  private readonly retryAfterMs = new Map<string, number>();
  /** The verifier hands out one identity object per assertion, so this hits on every request but the first. */
  private readonly built = new WeakMap<EdgeIdentity, Built>();
  private readonly groupRoles = new WeakMap<EdgeIdentity, PlatformRole[]>();

  constructor(private readonly options: PrincipalResolverOptions) {}

  /** Fails closed with AUTH_READ_MODEL_STALE, or IAM_UNAVAILABLE for a first-time user iam cannot sign in. */
  async resolve(identity: EdgeIdentity, correlationId: string): Promise<Principal> {
    this.requireFresh();
    const key = identityKey(identity);
    let entry = this.known(identity, key);
    if (entry === undefined || this.profileChanged(identity, entry, key)) {
      entry = await this.signIn(identity, key, correlationId, entry);
    }
    return this.build(identity, entry);
  }

  /** The principal as the read model has it now, without asking IAM: subscriptions re-check against it. */
  current(identity: EdgeIdentity): Principal | undefined {
    const entry = this.known(identity, identityKey(identity));
    return entry === undefined ? undefined : this.build(identity, entry);
  }

  requireFresh(): void {
    if (this.options.model.isFresh()) return;
    const ageMs = this.options.model.ageMs();
    throw new AppError('AUTH_READ_MODEL_STALE', 'Authorization data is out of date; retry shortly', {
      details: { ageMs, maxAgeMs: this.options.maxAgeMs },
    });
  }

  private known(identity: EdgeIdentity, key: string): PrincipalEntry | undefined {
    const stored = this.options.model.principal(identity.iss, identity.sub);
    if (this.answered.size === 0) return stored;
    const answer = this.answered.get(key);
    if (answer === undefined) return stored;
    if (stored !== undefined && stored.version >= answer.version) {
      this.answered.delete(key);
      return stored;
    }
    return answer;
  }

  private profileChanged(identity: EdgeIdentity, entry: PrincipalEntry, key: string): boolean {
    const verifiedNow = identity.email_verified && !entry.emailVerified;
    if (!verifiedNow && (identity.email ?? null) === entry.email && (identity.name ?? null) === entry.name) return false;
    if (this.settledProfiles.get(key) === profileOf(identity)) return false;
    const retryAt = this.retryAfterMs.get(key);
    if (retryAt !== undefined) {
      if (retryAt > this.options.clock.nowMs()) return false;
      this.retryAfterMs.delete(key);
    }
    return true;
  }

  private async signIn(identity: EdgeIdentity, key: string, correlationId: string, known: PrincipalEntry | undefined): Promise<PrincipalEntry> {
    let call = this.pending.get(key);
    if (call === undefined) {
      call = this.callIam(identity, key, correlationId);
      this.pending.set(key, call);
      void call.catch(() => undefined).finally(() => this.pending.delete(key));
    }
    try {
      return await call;
    } catch (error) {
      // A user iam already knows keeps working from the read model while iam is away; only a first-time user cannot.
      if (known === undefined) throw error;
      this.retryAfterMs.set(key, this.options.clock.nowMs() + PROFILE_RETRY_MS);
      this.options.logger.warn({ err: error, userId: known.userId, correlationId }, 'profile update at iam failed; serving the read model entry');
      return known;
    }
  }

  private async callIam(identity: EdgeIdentity, key: string, correlationId: string): Promise<PrincipalEntry> {
    let entry: PrincipalEntry;
    try {
      entry = await this.options.signIn(identity, correlationId);
    } catch (error) {
      this.options.onSignIn?.('failed');
      throw error;
    }
    this.options.onSignIn?.('ok');
    const stored = this.options.model.principal(identity.iss, identity.sub);
    if (stored === undefined || stored.version < entry.version) this.answered.set(key, entry);
    this.settledProfiles.set(key, profileOf(identity));
    return entry;
  }

  private build(identity: EdgeIdentity, entry: PrincipalEntry): Principal {
    const catalogVersion = this.options.model.catalog()?.version;
    const cached = this.built.get(identity);
    if (cached !== undefined && cached.entry === entry && cached.catalogVersion === catalogVersion) return cached.principal;
    let groupRoles = this.groupRoles.get(identity);
    if (groupRoles === undefined) {
      groupRoles = platformRolesFromGroups(identity.groups, this.options.roleGroups);
      this.groupRoles.set(identity, groupRoles);
    }
    const principal = principalFromEntry(entry, groupRoles, catalogVersion);
    this.built.set(identity, { entry, catalogVersion, principal });
    return principal;
  }
}

function identityKey(identity: EdgeIdentity): string {
  return `${identity.iss}\n${identity.sub}`;
}

function profileOf(identity: EdgeIdentity): string {
  return `${identity.email ?? ''}\u0000${identity.name ?? ''}\u0000${identity.email_verified}`;
}
