import type pg from 'pg';
import { effectivePolicy, parsePolicyValue, type PolicySnapshot } from '@aifactory/authz';
import { systemClock, type Clock } from '@aifactory/clock';
import type { Actor } from '@aifactory/contracts';
import { expiringAmount } from './promotional-draw.js';
import { AppError } from '@aifactory/errors';
import { LedgerStore } from '../data/ledger-store.js';
import { PromotionalGrantStore, type PromotionalGrantRecord } from '../data/promotional-grants.js';
import { inTransaction, type Tx } from '../data/transactions.js';
import type { Ledger, PostingResult } from './ledger.js';

export const PROMOTIONAL_CREDIT_TTL_KEY = 'billing.promotional_credit.ttl';
const EXPIRY_ACTOR: Actor = { type: 'system', id: 'billing.promotional-expiry' };
const DUE_BATCH = 100;

export interface GrantSpec {
  /** The grant's idempotency key: the same grant again returns the first one. */
  postingId: string;
  organizationId: string;
  amount: bigint;
  /** When the credit expires; left out, `billing.promotional_credit.ttl` from now. */
  expiresAt?: Date | null;
  /** `billing.promotional_credit.ttl` for the organization (promotionalCreditTtlSeconds): the default and the latest expiry. */
  ttlSeconds: number;
  actor: Actor;
  correlationId?: string;
  description?: string | null;
}

export interface GrantResult {
  grant: PromotionalGrantRecord;
  posting: PostingResult;
  /** False when the posting id was granted before: nothing was written and this is the first grant. */
  created: boolean;
}

export interface GrantExpiry {
  grant: PromotionalGrantRecord;
  /** The expiry's posting; absent when the grant had been spent in full. */
  posting?: PostingResult;
}

export interface ExpiryRound {
  expired: GrantExpiry[];
  /** Grants that could not be expired this round; they stay due, and the next round tries again. */
  failed: { grantId: string; organizationId: string; error: unknown }[];
}

/** `billing.promotional_credit.ttl` in force for the organization whose policy snapshot this is, in seconds. */
export function promotionalCreditTtlSeconds(snapshot: PolicySnapshot): number {
  const effective = effectivePolicy(snapshot, {}, PROMOTIONAL_CREDIT_TTL_KEY);
  const parsed = parsePolicyValue(snapshot.keys[PROMOTIONAL_CREDIT_TTL_KEY]!, effective.value);
  if (!parsed.ok || parsed.exact.units <= 0n) {
    throw new AppError('POLICY_VALUE_INVALID', `${PROMOTIONAL_CREDIT_TTL_KEY} must be a positive duration`, {
      details: { key: PROMOTIONAL_CREDIT_TTL_KEY, level: effective.level },
    });
  }
  return Number(parsed.exact.units);
}

/** When a grant made at `now` expires: the requested instant, else the policy TTL from now; never in the past nor beyond the TTL. */
export function grantExpiry(now: Date, ttlSeconds: number, requested?: Date | null): Date {
  const latest = new Date(now.getTime() + ttlSeconds * 1000);
  if (requested === undefined || requested === null) return latest;
  if (Number.isNaN(requested.getTime()) || requested.getTime() <= now.getTime() || requested.getTime() > latest.getTime()) {
    throw new AppError('BILLING_PROMOTIONAL_EXPIRY_INVALID', `Promotional credit must expire after now and at the latest ${latest.toISOString()} (${PROMOTIONAL_CREDIT_TTL_KEY})`, {
      details: { latest: latest.toISOString() },
    });
  }
  return requested;
}

/**
 * Promotional credit (issue 16: spent before the paid balance, expires by
 * policy, expiry is a posting). A grant is a posting from the platform's
 * promotions account to the organization's promotional credit account plus
 * a promotional_grants row; a charge draws it down earliest expiry first
 * (Ledger.chargeIn) and its expiry posts what is left of it back. All
 * promotional credit must come in through `grantIn`: only grants are drawn.
 */
export class PromotionalCredit {
  private readonly grants = new PromotionalGrantStore();
  private readonly funds = new LedgerStore();

  constructor(
    private readonly pool: pg.Pool,
    private readonly ledger: Ledger,
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * Grants promotional credit inside the caller's transaction. Idempotent by
   * posting id: a repeat returns the first grant (its expiry too, when the
   * repeat left it to the policy); a repeat that names another expiry, amount
   * or organization is BILLING_POSTING_CONFLICT.
   */
  async grantIn(tx: Tx, spec: GrantSpec): Promise<GrantResult> {
    const first = await this.grants.byPosting(tx, spec.postingId);
    if (first) return this.repeat(tx, first, spec);
    const expiresAt = grantExpiry(this.clock.now(), spec.ttlSeconds, spec.expiresAt);
    const posting = await this.credit(tx, spec, expiresAt);
    const grant = await this.grants.insert(tx, {
      organizationId: spec.organizationId,
      currency: posting.posting.currency,
      amount: spec.amount,
      expiresAt,
      grantPostingId: spec.postingId,
    });
    if (grant) return { grant, posting, created: posting.created };
    // A concurrent grant under the same posting id committed first: compare with it like any repeat.
    const winner = await this.grants.byPosting(tx, spec.postingId);
    // Without a grant row the credit would never expire: refuse rather than commit it.
    if (!winner) throw new Error(`promotional grant of posting ${spec.postingId} is missing after its insert`);
    return this.repeat(tx, winner, spec);
  }

  /**
   * Expires every grant due at `now`, oldest expiry first, each in a
   * transaction of its own, so one organization's failure holds up no other.
   * Several instances may run it at once: the funds row and then the grant
   * row are locked, and a grant another instance expired is skipped.
   */
  async expireDue(now: Date = this.clock.now()): Promise<ExpiryRound> {
    const round: ExpiryRound = { expired: [], failed: [] };
    let after: { expiresAt: Date; id: string } | null = null;
    for (;;) {
      const due = await this.grants.due(this.pool, now, after, DUE_BATCH);
      for (const candidate of due) {
        try {
          const expiry = await inTransaction(this.pool, (tx) => this.expireIn(tx, candidate.id, candidate.organizationId));
          if (expiry) round.expired.push(expiry);
        } catch (error) {
          round.failed.push({ grantId: candidate.id, organizationId: candidate.organizationId, error });
        }
      }
      if (due.length < DUE_BATCH) return round;
      after = due[due.length - 1]!;
    }
  }

  private async expireIn(tx: Tx, grantId: string, organizationId: string): Promise<GrantExpiry | undefined> {
    // Lock order of every ledger writer: the funds row first, then the grant.
    const funds = (await this.funds.lockFunds(tx, [organizationId])).get(organizationId);
    if (!funds) throw new AppError('BILLING_ORGANIZATION_UNKNOWN', 'Billing has no accounts for this organization', { details: { organizationId } });
    const grant = await this.grants.lock(tx, grantId);
    if (!grant || grant.expiredAt !== null) return undefined;
    const left = expiringAmount(grant.remaining, funds.promotional);
    if (left === 0n) return { grant: await this.grants.markExpired(tx, grant.id, 0n, null) };
    const accounts = await this.ledger.organizationAccounts(organizationId, tx);
    const promotions = await this.ledger.accounts.platformAccount('promotions', grant.currency, tx);
    const [posting] = await this.ledger.postIn(tx, [
      {
        id: `promotional-expiry:${grant.id}`,
        kind: 'promotional_expiry',
        currency: grant.currency,
        organizationId,
        transfers: [{ debitAccountId: accounts.promotional_credit.id, creditAccountId: promotions.id, amount: left, code: 'promotional_expiry' }],
        description: 'Promotional credit expired',
        metadata: { grantId: grant.id, grantPostingId: grant.grantPostingId, expiresAt: grant.expiresAt.toISOString() },
        actor: EXPIRY_ACTOR,
      },
    ]);
    return { grant: await this.grants.markExpired(tx, grant.id, left, posting!.posting.id), posting: posting! };
  }

  private async repeat(tx: Tx, first: PromotionalGrantRecord, spec: GrantSpec): Promise<GrantResult> {
    const differs =
      first.organizationId !== spec.organizationId ||
      first.amount !== spec.amount ||
      (spec.expiresAt !== undefined && spec.expiresAt !== null && spec.expiresAt.getTime() !== first.expiresAt.getTime());
    if (differs) {
      throw new AppError('BILLING_POSTING_CONFLICT', `Posting ${spec.postingId} was already used for another promotional grant`, {
        details: { postingId: spec.postingId },
      });
    }
    // The ledger returns the first posting unchanged (created: false).
    const posting = await this.credit(tx, spec, first.expiresAt);
    return { grant: first, posting, created: false };
  }

  private credit(tx: Tx, spec: GrantSpec, expiresAt: Date): Promise<PostingResult> {
    return this.ledger.creditIn(tx, {
      postingId: spec.postingId,
      kind: 'promotional_grant',
      organizationId: spec.organizationId,
      amount: spec.amount,
      to: 'promotional_credit',
      from: 'promotions',
      actor: spec.actor,
      ...(spec.correlationId === undefined ? {} : { correlationId: spec.correlationId }),
      description: spec.description ?? null,
      metadata: { expiresAt: expiresAt.toISOString() },
    });
  }
}
