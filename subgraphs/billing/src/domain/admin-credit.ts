import type pg from 'pg';
import { z } from 'zod';
import { requireFreshPolicy, type Access, type PolicySnapshot } from '@aifactory/authz';
import { AppError, isAppError, parseInput } from '@aifactory/errors';
import type { Principal } from '@aifactory/service-auth';
import { actorOf } from '@aifactory/subgraph-kit';
import type { BalanceStore } from '../data/balances.js';
import type { LedgerHistoryStore, PostingView } from '../data/ledger-history.js';
import type { PostingRecord } from '../data/ledger-store.js';
import { inTransaction } from '../data/transactions.js';
import { recordAudit } from './audit.js';
import { balanceOf, type Balance } from './balances.js';
import type { Ledger } from './ledger.js';
import { parseAmount } from './money.js';
import { BILLING_ADMIN } from './price-books.js';
import { promotionalCreditTtlSeconds, type PromotionalCredit } from './promotional-credit.js';

/** Where an admin credit lands: the paid balance, or promotional credit that expires by policy. */
export type CreditKind = 'paid' | 'promotional';

/** An admin money action's idempotency key (creditBalance, refundPayment), in the posting-id alphabet: a credit's posting id is built from it. */
export const moneyActionKey = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be 1-128 letters, digits or . _ : - (a UUID serves)');

const creditInput = z.object({
  organizationId: z.uuid(),
  amount: z.string(),
  kind: z.enum(['paid', 'promotional']),
  expiresAt: z.date().nullish(),
  reason: z.string().trim().min(1).max(500),
  idempotencyKey: moneyActionKey,
});

export type CreditBalanceInput = z.input<typeof creditInput>;

/** The policy snapshots of IAM's read model, with their age. */
export interface PolicySource {
  ageMs(): number | null;
  policy(organizationId: string): PolicySnapshot | undefined;
}

/** Who credits: the request's principal, its authorization and correlation id, and the policy it is judged under. */
export interface CreditingCaller {
  principal: Principal;
  access: Access;
  correlationId: string;
  accessModel: PolicySource;
}

export interface CreditResult {
  posting: PostingView;
  /** False when the idempotency key was used before for the same credit: nothing was written. */
  created: boolean;
  /** When promotional credit expires; null for a paid credit. */
  expiresAt: Date | null;
  /** The organization's balance right after the credit. */
  balance: Balance;
}

/**
 * A platform admin's credit to an organization (`creditBalance`): a paid
 * credit moves money from the platform's payment clearing account (money
 * received outside the card flow, such as a bank transfer) to the
 * organization's customer balance; a promotional credit is a promotional
 * grant that expires by `billing.promotional_credit.ttl`. The posting id is
 * `admin-credit:<idempotencyKey>`, so a retry changes nothing and returns
 * the first credit; the change and its `billing.balance.credit` audit
 * record commit together.
 */
export class AdminCredit {
  constructor(
    private readonly pool: pg.Pool,
    private readonly ledger: Ledger,
    private readonly promotional: PromotionalCredit,
    private readonly balances: BalanceStore,
    private readonly history: LedgerHistoryStore,
    private readonly options: { subjectPrefix: string },
  ) {}

  async credit(caller: CreditingCaller, input: CreditBalanceInput): Promise<CreditResult> {
    const valid = parseInput(creditInput, input);
    const { organizationId, kind, reason, idempotencyKey } = valid;
    caller.access.require(BILLING_ADMIN, { organizationId });
    const amount = parseAmount(valid.amount, 'amount');
    if (kind === 'paid' && valid.expiresAt) {
      throw new AppError('BAD_REQUEST_INVALID_INPUT', 'expiresAt is for promotional credit only', { details: { field: 'expiresAt' } });
    }
    const ttlSeconds = kind === 'promotional' ? promotionalCreditTtlSeconds(freshSnapshot(caller.accessModel, organizationId)) : 0;
    // Immutable account facts, read before the transaction: its one connection is then all it needs.
    const accounts = await this.ledger.organizationAccounts(organizationId);
    await this.ledger.accounts.platformAccount(kind === 'paid' ? 'payment_clearing' : 'promotions', accounts.currency);

    const postingId = `admin-credit:${idempotencyKey}`;
    const actor = actorOf(caller.principal);
    const credited = await reusedKeyRefused(idempotencyKey, () =>
      inTransaction(this.pool, async (tx) => {
        let posting: PostingRecord;
        let created: boolean;
        let expiresAt: Date | null = null;
        if (kind === 'paid') {
          const result = await this.ledger.creditIn(tx, {
            postingId,
            kind: 'admin_credit',
            organizationId,
            amount,
            to: 'customer_balance',
            from: 'payment_clearing',
            actor,
            correlationId: caller.correlationId,
            description: reason,
          });
          ({ posting, created } = result);
        } else {
          const result = await this.promotional.grantIn(tx, {
            postingId,
            organizationId,
            amount,
            expiresAt: valid.expiresAt ?? null,
            ttlSeconds,
            actor,
            correlationId: caller.correlationId,
            description: reason,
          });
          ({ created } = result);
          posting = result.posting.posting;
          expiresAt = result.grant.expiresAt;
        }
        if (created) {
          const account = kind === 'paid' ? accounts.customer_balance : accounts.promotional_credit;
          await recordAudit(
            tx,
            {
              action: 'billing.balance.credit',
              caller,
              scope: BILLING_ADMIN,
              resource: { organizationId, type: 'ledger_account', id: account.id },
              reason,
              details: {
                postingId,
                kind,
                amount: amount.toString(),
                currency: accounts.currency,
                idempotencyKey,
                ...(expiresAt === null ? {} : { expiresAt: expiresAt.toISOString() }),
              },
            },
            { subjectPrefix: this.options.subjectPrefix },
          );
        }
        return { posting, created, expiresAt };
      }),
    );
    const transfers = await this.history.transfersOfPostings([credited.posting.id]);
    const funds = await this.balances.funds(organizationId);
    if (!funds) throw new Error(`organization ${organizationId} lost its funds row after a credit`);
    return {
      posting: { ...credited.posting, transfers: transfers.get(credited.posting.id) ?? [] },
      created: credited.created,
      expiresAt: credited.expiresAt,
      balance: balanceOf(funds),
    };
  }
}

/** The key names one credit: used again for another amount, kind or organization, it is refused, not re-applied. */
async function reusedKeyRefused<T>(idempotencyKey: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (isAppError(error) && error.code === 'BILLING_POSTING_CONFLICT') {
      throw new AppError('IDEMPOTENCY_KEY_REUSED', 'This idempotency key was already used for another credit', {
        details: { idempotencyKey },
        cause: error,
      });
    }
    throw error;
  }
}

/**
 * The organization's policy snapshot, only when IAM's read model is fresh:
 * promotional expiry, payment initiation and refunds fail closed (seed 002),
 * so a missing or stale snapshot refuses with POLICY_SNAPSHOT_STALE rather
 * than guessing.
 */
export function freshSnapshot(policy: PolicySource, organizationId: string): PolicySnapshot {
  requireFreshPolicy({ ageMs: policy.ageMs() });
  const snapshot = policy.policy(organizationId);
  if (!snapshot) throw new AppError('POLICY_SNAPSHOT_STALE', 'Policy is temporarily unavailable; retry shortly', { details: { organizationId } });
  return snapshot;
}
