import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { Actor } from '@aifactory/contracts';
import { AppError } from '@aifactory/errors';
import { currentCorrelationId } from '@aifactory/logging';
import type { AccountDirectory, AccountFacts, OrganizationAccountKind, OrganizationAccounts, PlatformAccountKind } from '../data/account-directory.js';
import {
  groupByPosting,
  LedgerStore,
  type BalanceDelta,
  type BudgetDelta,
  type BudgetRelease,
  type FundsDelta,
  type NewPosting,
  type NewTransfer,
  type PostingRecord,
  type TransferRecord,
} from '../data/ledger-store.js';
import { PromotionalGrantStore } from '../data/promotional-grants.js';
import { inTransaction, type Tx } from '../data/transactions.js';
import { CURRENCY_PATTERN, MAX_AMOUNT } from './money.js';
import { drawEarliestFirst } from './promotional-draw.js';

export interface TransferSpec {
  debitAccountId: string;
  creditAccountId: string;
  /** Integer minor units, above zero. */
  amount: bigint;
  /** Why the money moved: `spend`, `promotional_spend`, `credit`, `promotional_grant`, ... */
  code: string;
}

/** A reservation's hold let go by the posting that settles it, in the same statements. */
export interface HoldRelease {
  amount: bigint;
  /** The budget month the reservation held in. */
  period: string;
  departmentId: string;
  projectId: string;
}

export interface PostingSpec {
  /** The caller's idempotency key for this posting: the same id again returns the first result. */
  id: string;
  kind: string;
  currency: string;
  organizationId?: string | null;
  departmentId?: string | null;
  projectId?: string | null;
  transfers: readonly TransferSpec[];
  description?: string | null;
  metadata?: Record<string, unknown>;
  /** Finance should look at it (posted above its reservation, ...). */
  flagged?: boolean;
  actor: Actor;
  correlationId?: string;
  /**
   * What the caller asked for, when the transfers depend on balances at the
   * time (a charge's promotional split): a repeat is then compared on this,
   * since its transfers would come out differently.
   */
  request?: unknown;
  release?: HoldRelease;
}

export interface PostingResult {
  posting: PostingRecord;
  transfers: TransferRecord[];
  /** False when the posting id existed: nothing was written and this is the first result. */
  created: boolean;
}

export interface ChargeSpec {
  postingId: string;
  kind: string;
  organizationId: string;
  departmentId?: string | null;
  projectId?: string | null;
  /** What the service cost; promotional credit pays first, the paid balance the rest (and may go negative). */
  amount: bigint;
  actor: Actor;
  correlationId?: string;
  description?: string | null;
  metadata?: Record<string, unknown>;
  flagged?: boolean;
  release?: HoldRelease;
}

export interface CreditSpec {
  postingId: string;
  kind: string;
  organizationId: string;
  amount: bigint;
  /** The organization's account credited. */
  to: Extract<OrganizationAccountKind, 'customer_balance' | 'promotional_credit'>;
  /** The platform account debited: payment clearing for money received, promotions for promotional credit. */
  from: PlatformAccountKind;
  actor: Actor;
  correlationId?: string;
  description?: string | null;
  metadata?: Record<string, unknown>;
}

export interface LedgerOptions {
  /** Rows a platform account's balance is spread over, so concurrent postings do not queue on one row (default 16). */
  platformShards?: number;
  /**
   * Called inside the posting transaction once a posting changed the
   * spendable balance (paid plus promotional) of organizations: credits,
   * charges, reservation posts, promotional expiry. Their funds rows are
   * locked (in id order) when it runs, so whatever it locks next comes after
   * them in the lock order. Organization ids sorted, each once. Balance alerts
   * check here (services.ts), so no change of funds misses a crossing.
   */
  onFundsChanged?: (tx: Tx, organizationIds: string[]) => Promise<void>;
}

const POSTING_ID = /^[A-Za-z0-9][A-Za-z0-9:._\-]{0,199}$/;
const CODE = /^[a-z][a-z_]{0,62}$/;
const MAX_TRANSFERS_PER_POSTING = 64;
/** Organization accounts whose balance is spendable (organization_funds.paid and .promotional). */
const SPENDABLE: ReadonlySet<string> = new Set(['customer_balance', 'promotional_credit']);

/**
 * The double-entry ledger (ARCHITECTURE.md, Decisions: Money). A posting is
 * one or more transfers written in one transaction with the balance read
 * model (account balances, organization funds, budget spend) they change;
 * it is idempotent by id: the same posting again changes nothing and returns
 * the first result, another one under a used id is BILLING_POSTING_CONFLICT.
 */
export class Ledger {
  private readonly store = new LedgerStore();
  private readonly grants = new PromotionalGrantStore();

  /** Rows a platform account's balance is spread over, so concurrent postings do not queue on one row. */
  private readonly platformShards: number;

  constructor(
    private readonly pool: pg.Pool,
    readonly accounts: AccountDirectory,
    private readonly options: LedgerOptions = {},
  ) {
    this.platformShards = options.platformShards ?? 16;
  }

  /** Posts in a transaction of its own: all of them, or none. */
  post(specs: readonly PostingSpec[]): Promise<PostingResult[]> {
    return inTransaction(this.pool, (tx) => this.postIn(tx, specs));
  }

  /** Posts inside the caller's transaction, which must commit for anything to count. */
  postIn(tx: Tx, specs: readonly PostingSpec[]): Promise<PostingResult[]> {
    return this.postLocking(tx, specs, new Set());
  }

  /** `postIn`, skipping the funds rows this transaction has locked already (a charge reads them first). */
  private async postLocking(tx: Tx, specs: readonly PostingSpec[], locked: ReadonlySet<string>): Promise<PostingResult[]> {
    const { checked, facts } = await this.check(tx, specs);
    const organizations = [...new Set(checked.flatMap((c) => (c.spec.organizationId ? [c.spec.organizationId] : [])))]
      .filter((organizationId) => !locked.has(organizationId))
      .sort();
    const funds = await this.store.lockFunds(tx, organizations);
    for (const organizationId of organizations) {
      if (!funds.has(organizationId)) {
        throw new AppError('BILLING_ORGANIZATION_UNKNOWN', 'Billing has no accounts for this organization yet', { details: { organizationId } });
      }
    }

    const inserted = await this.store.insertPostings(tx, checked.map((c) => c.row));
    const insertedIds = new Set(inserted.map((posting) => posting.id));
    const earlier = await this.earlierResults(tx, checked.filter((c) => !insertedIds.has(c.spec.id)));

    const fresh = checked.filter((c) => insertedIds.has(c.spec.id));
    const transfers = await this.store.insertTransfers(
      tx,
      fresh.flatMap(({ spec }) =>
        spec.transfers.map(
          (transfer, ordinal): NewTransfer => ({
            postingId: spec.id,
            ordinal,
            debitAccountId: transfer.debitAccountId,
            creditAccountId: transfer.creditAccountId,
            amount: transfer.amount,
            currency: spec.currency,
            code: transfer.code,
            organizationId: spec.organizationId ?? null,
            departmentId: spec.departmentId ?? null,
            projectId: spec.projectId ?? null,
          }),
        ),
      ),
    );
    const effects = this.effectsOf(fresh, facts);
    if ((await this.store.applyFunds(tx, effects.funds)) !== effects.funds.length) {
      throw new Error('an organization funds row disappeared under its lock');
    }
    await this.store.applyBalances(tx, effects.balances);
    await this.store.releaseBudgets(tx, effects.releases);
    await this.store.applySpend(tx, effects.spend);
    // Paid plus promotional changed for these (a release alone changes only `reserved`); their funds rows are locked already.
    const moved = effects.funds.filter((delta) => delta.paid + delta.promotional !== 0n).map((delta) => delta.organizationId);
    if (this.options.onFundsChanged && moved.length > 0) await this.options.onFundsChanged(tx, [...new Set(moved)].sort());

    const byPosting = groupByPosting(transfers);
    const insertedById = new Map(inserted.map((posting) => [posting.id, posting]));
    return checked.map(({ spec }) => {
      const posting = insertedById.get(spec.id);
      if (posting) return { posting, transfers: byPosting.get(spec.id) ?? [], created: true };
      return earlier.get(spec.id)!;
    });
  }

  /**
   * Charges an organization for a delivered service: promotional credit
   * first (drawn from its grants, earliest expiry first), then the paid
   * balance, which may go negative (ARCHITECTURE.md: only delivered service
   * takes a balance below zero).
   */
  async chargeIn(tx: Tx, spec: ChargeSpec): Promise<PostingResult> {
    const accounts = await this.organizationAccounts(spec.organizationId, tx);
    const revenue = await this.accounts.platformAccount('revenue', accounts.currency, tx);
    const funds = (await this.store.lockFunds(tx, [spec.organizationId])).get(spec.organizationId);
    if (!funds) throw new AppError('BILLING_ORGANIZATION_UNKNOWN', 'Billing has no accounts for this organization yet');
    const fromPromotional = promotionalPart(spec.amount, funds.promotional);
    const [result] = await this.postLocking(tx, [chargePosting(spec, accounts, revenue, fromPromotional)], new Set([spec.organizationId]));
    // Only a new posting draws: a repeat's promotional part was drawn by its first.
    if (result!.created && fromPromotional > 0n) {
      await this.grants.draw(tx, drawEarliestFirst(await this.grants.drawable(tx, spec.organizationId), fromPromotional));
    }
    return result!;
  }

  /**
   * `chargeIn` for many charges, of one organization or several, with other
   * postings of theirs beside them (usage rating's remainder-chain steps:
   * charges and credits back), in one round of statements instead of one per
   * charge. Locks the funds rows of every organization named, in id order
   * (no wait for rows this transaction holds already), and splits each charge
   * as `chargeIn` would have, one after the other in the order given:
   * promotional credit first, from what the charges before it left. Returns
   * the results in order, charges first.
   *
   * Every charge must be new: a charge repeating an earlier posting would
   * have had its promotional part taken from balances it does not draw, so
   * the later charges' splits would be wrong; such a call throws
   * BILLING_POSTING_CONFLICT and the caller's transaction must roll back.
   */
  async chargeAllIn(tx: Tx, charges: readonly ChargeSpec[], others: readonly PostingSpec[] = []): Promise<PostingResult[]> {
    const organizations = [
      ...new Set([...charges.map((charge) => charge.organizationId), ...others.flatMap((spec) => (spec.organizationId ? [spec.organizationId] : []))]),
    ].sort();
    const funds = await this.store.lockFunds(tx, organizations);
    const promotionalLeft = new Map<string, bigint>();
    for (const organizationId of organizations) {
      const locked = funds.get(organizationId);
      if (!locked) throw new AppError('BILLING_ORGANIZATION_UNKNOWN', 'Billing has no accounts for this organization yet', { details: { organizationId } });
      promotionalLeft.set(organizationId, locked.promotional);
    }
    const drawn = new Map<string, bigint>();
    const specs: PostingSpec[] = [];
    for (const charge of charges) {
      const accounts = await this.organizationAccounts(charge.organizationId, tx);
      const revenue = await this.accounts.platformAccount('revenue', accounts.currency, tx);
      const left = promotionalLeft.get(charge.organizationId)!;
      const fromPromotional = promotionalPart(charge.amount, left);
      promotionalLeft.set(charge.organizationId, left - fromPromotional);
      drawn.set(charge.organizationId, (drawn.get(charge.organizationId) ?? 0n) + fromPromotional);
      specs.push(chargePosting(charge, accounts, revenue, fromPromotional));
    }
    const results = await this.postLocking(tx, [...specs, ...others], new Set(organizations));
    const repeat = results.slice(0, charges.length).find((result) => !result.created);
    if (repeat) {
      throw new AppError('BILLING_POSTING_CONFLICT', `Posting ${repeat.posting.id} exists: charges posted together must be new`, { details: { postingId: repeat.posting.id } });
    }
    // Drawing the sum earliest expiry first takes from the grants what drawing each charge's part in turn would.
    for (const [organizationId, amount] of drawn) {
      if (amount > 0n) await this.grants.draw(tx, drawEarliestFirst(await this.grants.drawable(tx, organizationId), amount));
    }
    return results;
  }

  /** Credits an organization's paid balance or promotional credit from a platform account. */
  async creditIn(tx: Tx, spec: CreditSpec): Promise<PostingResult> {
    const accounts = await this.organizationAccounts(spec.organizationId, tx);
    const from = await this.accounts.platformAccount(spec.from, accounts.currency, tx);
    const [result] = await this.postIn(tx, [
      {
        id: spec.postingId,
        kind: spec.kind,
        currency: accounts.currency,
        organizationId: spec.organizationId,
        transfers: [{ debitAccountId: from.id, creditAccountId: accounts[spec.to].id, amount: spec.amount, code: spec.kind }],
        description: spec.description ?? null,
        metadata: spec.metadata ?? {},
        actor: spec.actor,
        ...(spec.correlationId === undefined ? {} : { correlationId: spec.correlationId }),
      },
    ]);
    return result!;
  }

  /**
   * Lets go of reservations' holds without posting anything (void, expiry, a
   * post of zero), the funds rows of all their organizations locked first, in
   * id order.
   */
  async releaseIn(tx: Tx, holds: readonly { organizationId: string; release: HoldRelease }[]): Promise<void> {
    await this.store.lockFunds(tx, holds.map((hold) => hold.organizationId));
    await this.store.applyFunds(
      tx,
      holds.map(({ organizationId, release }) => ({ organizationId, paid: 0n, promotional: 0n, released: release.amount })),
    );
    await this.store.releaseBudgets(tx, holds.flatMap(({ organizationId, release }) => budgetReleases(organizationId, release)));
  }

  /** The organization's accounts, read on the caller's connection when given (a transaction must not wait on the pool). */
  async organizationAccounts(organizationId: string, db?: Tx) {
    const accounts = await this.accounts.organization(organizationId, db);
    if (!accounts) {
      throw new AppError('BILLING_ORGANIZATION_UNKNOWN', 'Billing has no accounts for this organization yet', { details: { organizationId } });
    }
    return accounts;
  }

  private async check(
    tx: Tx,
    specs: readonly PostingSpec[],
  ): Promise<{ checked: { spec: PostingSpec; row: NewPosting }[]; facts: Map<string, AccountFacts> }> {
    const ids = new Set<string>();
    for (const spec of specs) {
      if (ids.has(spec.id)) throw invalid(`posting ${spec.id} appears twice in one batch`);
      ids.add(spec.id);
    }
    const facts = await this.accounts.facts(
      specs.flatMap((spec) => spec.transfers.flatMap((t) => [t.debitAccountId, t.creditAccountId])),
      tx,
    );
    const checked = specs.map((spec) => {
      checkShape(spec);
      for (const transfer of spec.transfers) checkAccounts(spec, transfer, facts);
      return {
        spec,
        row: {
          id: spec.id,
          kind: spec.kind,
          organizationId: spec.organizationId ?? null,
          departmentId: spec.departmentId ?? null,
          projectId: spec.projectId ?? null,
          currency: spec.currency,
          fingerprint: fingerprintOf(spec),
          description: spec.description ?? null,
          metadata: spec.metadata ?? {},
          actor: spec.actor,
          correlationId: spec.correlationId ?? currentCorrelationId(),
          flagged: spec.flagged ?? false,
        },
      };
    });
    return { checked, facts };
  }

  /** The first results of postings whose ids were used before: the same request, or a conflict. */
  private async earlierResults(tx: Tx, repeats: readonly { spec: PostingSpec; row: NewPosting }[]): Promise<Map<string, PostingResult>> {
    const results = new Map<string, PostingResult>();
    if (repeats.length === 0) return results;
    const found = new Map((await this.store.findPostings(tx, repeats.map((r) => r.spec.id))).map((posting) => [posting.id, posting]));
    for (const { spec, row } of repeats) {
      const posting = found.get(spec.id);
      if (!posting || posting.fingerprint !== row.fingerprint) {
        throw new AppError('BILLING_POSTING_CONFLICT', `Posting ${spec.id} was already used for other transfers`, { details: { postingId: spec.id } });
      }
    }
    const transfers = groupByPosting(await this.store.transfersOf(tx, [...found.keys()]));
    for (const [id, posting] of found) results.set(id, { posting, transfers: transfers.get(id) ?? [], created: false });
    return results;
  }

  private effectsOf(
    fresh: readonly { spec: PostingSpec }[],
    facts: Map<string, AccountFacts>,
  ): {
    funds: FundsDelta[];
    balances: BalanceDelta[];
    spend: BudgetDelta[];
    releases: BudgetRelease[];
  } {
    const funds = new Map<string, FundsDelta>();
    const balances = new Map<string, BalanceDelta>();
    const spend = new Map<string, BudgetDelta>();
    const releases: BudgetRelease[] = [];
    const fundsOf = (organizationId: string) => {
      let delta = funds.get(organizationId);
      if (!delta) funds.set(organizationId, (delta = { organizationId, paid: 0n, promotional: 0n, released: 0n }));
      return delta;
    };
    for (const { spec } of fresh) {
      const shard = this.shardOf(spec.id);
      const organizationId = spec.organizationId ?? null;
      let spent = 0n;
      for (const transfer of spec.transfers) {
        const debit = facts.get(transfer.debitAccountId)!;
        const credit = facts.get(transfer.creditAccountId)!;
        addBalance(balances, debit, debit.organizationId === null ? shard : 0, transfer.amount, 0n);
        addBalance(balances, credit, credit.organizationId === null ? shard : 0, 0n, transfer.amount);
        for (const [account, sign] of [
          [debit, -1n],
          [credit, 1n],
        ] as const) {
          if (account.organizationId === null) continue;
          if (account.kind === 'customer_balance') fundsOf(account.organizationId).paid += sign * transfer.amount;
          if (account.kind === 'promotional_credit') fundsOf(account.organizationId).promotional += sign * transfer.amount;
        }
        // Spend is money leaving an organization's spendable balance for revenue; a correction the other way takes it back.
        if (SPENDABLE.has(debit.kind) && credit.kind === 'revenue') spent += transfer.amount;
        if (debit.kind === 'revenue' && SPENDABLE.has(credit.kind)) spent -= transfer.amount;
      }
      if (organizationId !== null && spec.release) {
        fundsOf(organizationId).released += spec.release.amount;
        releases.push(...budgetReleases(organizationId, spec.release));
      }
      if (organizationId !== null && spent !== 0n) {
        for (const pool of poolsOf(organizationId, spec.departmentId ?? null, spec.projectId ?? null)) {
          const key = `${pool.level}:${pool.id}`;
          const delta = spend.get(key);
          if (delta) delta.spent += spent;
          else spend.set(key, { ...pool, organizationId, spent });
        }
      }
    }
    return { funds: [...funds.values()], balances: [...balances.values()], spend: [...spend.values()], releases };
  }

  private shardOf(postingId: string): number {
    return createHash('sha1').update(postingId).digest().readUInt16BE(0) % this.platformShards;
  }
}

/** What promotional credit pays of a charge: all of it while the promotional balance lasts, none when that is not above zero. */
function promotionalPart(amount: bigint, promotional: bigint): bigint {
  return amount < promotional ? amount : promotional > 0n ? promotional : 0n;
}

/** A charge's posting: `fromPromotional` from promotional credit, the rest from the paid balance, both to revenue. */
function chargePosting(spec: ChargeSpec, accounts: OrganizationAccounts, revenue: AccountFacts, fromPromotional: bigint): PostingSpec {
  const fromPaid = spec.amount - fromPromotional;
  const transfers: TransferSpec[] = [];
  if (fromPromotional > 0n) {
    transfers.push({ debitAccountId: accounts.promotional_credit.id, creditAccountId: revenue.id, amount: fromPromotional, code: 'promotional_spend' });
  }
  if (fromPaid > 0n) {
    transfers.push({ debitAccountId: accounts.customer_balance.id, creditAccountId: revenue.id, amount: fromPaid, code: 'spend' });
  }
  return {
    id: spec.postingId,
    kind: spec.kind,
    currency: accounts.currency,
    organizationId: spec.organizationId,
    departmentId: spec.departmentId ?? null,
    projectId: spec.projectId ?? null,
    transfers,
    description: spec.description ?? null,
    metadata: spec.metadata ?? {},
    flagged: spec.flagged ?? false,
    actor: spec.actor,
    ...(spec.correlationId === undefined ? {} : { correlationId: spec.correlationId }),
    request: {
      charge: spec.amount.toString(),
      organizationId: spec.organizationId,
      departmentId: spec.departmentId ?? null,
      projectId: spec.projectId ?? null,
      release: spec.release ? { ...spec.release, amount: spec.release.amount.toString() } : null,
    },
    ...(spec.release ? { release: spec.release } : {}),
  };
}

/** The budget pools spend and holds are counted in: the organization, and its department and project where known. */
export function poolsOf(organizationId: string, departmentId: string | null, projectId: string | null): { level: 'organization' | 'department' | 'project'; id: string }[] {
  const pools: { level: 'organization' | 'department' | 'project'; id: string }[] = [{ level: 'organization', id: organizationId }];
  if (departmentId !== null) pools.push({ level: 'department', id: departmentId });
  if (projectId !== null) pools.push({ level: 'project', id: projectId });
  return pools;
}

function budgetReleases(organizationId: string, release: HoldRelease): BudgetRelease[] {
  return poolsOf(organizationId, release.departmentId, release.projectId).map((pool) => ({ ...pool, period: release.period, amount: release.amount }));
}

function addBalance(balances: Map<string, BalanceDelta>, account: AccountFacts, shard: number, debits: bigint, credits: bigint): void {
  const key = `${account.id}:${shard}`;
  const delta = balances.get(key);
  if (delta) {
    delta.debits += debits;
    delta.credits += credits;
  } else {
    balances.set(key, { accountId: account.id, shard, debits, credits });
  }
}

function invalid(message: string, details?: Record<string, unknown>): AppError {
  return new AppError('BILLING_POSTING_INVALID', message, details === undefined ? {} : { details });
}

function checkShape(spec: PostingSpec): void {
  if (!POSTING_ID.test(spec.id)) throw invalid('A posting id is 1 to 200 letters, digits and : . _ -', { postingId: spec.id });
  if (!CODE.test(spec.kind)) throw invalid('A posting kind is lowercase letters and _', { kind: spec.kind });
  if (!CURRENCY_PATTERN.test(spec.currency)) throw invalid('A posting currency is an ISO 4217 code', { currency: spec.currency });
  if (spec.transfers.length === 0 || spec.transfers.length > MAX_TRANSFERS_PER_POSTING) {
    throw invalid(`A posting has 1 to ${MAX_TRANSFERS_PER_POSTING} transfers`, { postingId: spec.id });
  }
  for (const transfer of spec.transfers) {
    if (typeof transfer.amount !== 'bigint' || transfer.amount <= 0n || transfer.amount > MAX_AMOUNT) {
      throw new AppError('BILLING_AMOUNT_INVALID', 'A transfer moves a positive whole number of minor units', { details: { postingId: spec.id } });
    }
    if (!CODE.test(transfer.code)) throw invalid('A transfer code is lowercase letters and _', { code: transfer.code });
    if (transfer.debitAccountId === transfer.creditAccountId) throw invalid('A transfer moves money between two different accounts', { postingId: spec.id });
  }
}

function checkAccounts(spec: PostingSpec, transfer: TransferSpec, facts: Map<string, AccountFacts>): void {
  for (const id of [transfer.debitAccountId, transfer.creditAccountId]) {
    const account = facts.get(id);
    if (!account) throw new AppError('BILLING_ACCOUNT_NOT_FOUND', 'A transfer names an account that does not exist', { details: { accountId: id } });
    if (account.currency !== spec.currency) {
      throw new AppError('BILLING_CURRENCY_MISMATCH', `Account ${id} holds ${account.currency}, not ${spec.currency}`, {
        details: { accountId: id, accountCurrency: account.currency, currency: spec.currency },
      });
    }
    if (account.organizationId !== null && account.organizationId !== (spec.organizationId ?? null)) {
      throw invalid("A posting moves only its own organization's money", { accountId: id });
    }
  }
}

/** What makes two postings under one id the same: their request where given, else their transfers. */
function fingerprintOf(spec: PostingSpec): string {
  const canonical = {
    kind: spec.kind,
    currency: spec.currency,
    organizationId: spec.organizationId ?? null,
    departmentId: spec.departmentId ?? null,
    projectId: spec.projectId ?? null,
    what:
      spec.request ??
      spec.transfers.map((t) => [t.debitAccountId, t.creditAccountId, t.amount.toString(), t.code]),
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url');
}
