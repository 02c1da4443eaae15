import { randomUUID } from 'node:crypto';
import type { AccountFacts, OrganizationAccounts } from '../src/data/account-directory.js';
import { inTransaction } from '../src/data/transactions.js';
import type { PostingResult, PostingSpec } from '../src/domain/ledger.js';
import { checkLedger } from '../src/domain/ledger-check.js';
import { startBillingFixture, testActor, type BillingFixture } from './billing-fixture.js';

const POSTINGS = 10_000;
const WRITERS = 16;
const SEED = Number(process.env.LEDGER_CONCURRENCY_SEED ?? Date.now() % 2 ** 31);

/** mulberry32: a seeded generator, so a failing run can be replayed with LEDGER_CONCURRENCY_SEED. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Organization {
  id: string;
  currency: string;
  accounts: OrganizationAccounts;
  pools: { departmentId: string; projectId: string }[];
}

/** What the test itself saw committed, kept apart from the database: the third witness beside checkLedger and plain SQL. */
class Witness {
  readonly accounts = new Map<string, { debits: bigint; credits: bigint }>();
  readonly spend = new Map<string, bigint>();
  postings = 0;
  transfers = 0;

  constructor(private readonly kinds: Map<string, AccountFacts>) {}

  record(results: readonly PostingResult[]): void {
    for (const { posting, transfers, created } of results) {
      if (!created) continue;
      this.postings += 1;
      let spent = 0n;
      for (const transfer of transfers) {
        this.transfers += 1;
        this.add(transfer.debitAccountId, transfer.amount, 0n);
        this.add(transfer.creditAccountId, 0n, transfer.amount);
        const debit = this.kinds.get(transfer.debitAccountId)!.kind;
        const credit = this.kinds.get(transfer.creditAccountId)!.kind;
        const spendable = (kind: string) => kind === 'customer_balance' || kind === 'promotional_credit';
        if (spendable(debit) && credit === 'revenue') spent += transfer.amount;
        if (debit === 'revenue' && spendable(credit)) spent -= transfer.amount;
      }
      if (spent === 0n || posting.organizationId === null) continue;
      for (const [level, id] of [
        ['organization', posting.organizationId],
        ['department', posting.departmentId],
        ['project', posting.projectId],
      ] as const) {
        if (id !== null) this.spend.set(`${level}:${id}`, (this.spend.get(`${level}:${id}`) ?? 0n) + spent);
      }
    }
  }

  balance(accountId: string): bigint {
    const sums = this.accounts.get(accountId);
    return sums === undefined ? 0n : sums.credits - sums.debits;
  }

  private add(accountId: string, debits: bigint, credits: bigint): void {
    const sums = this.accounts.get(accountId) ?? { debits: 0n, credits: 0n };
    this.accounts.set(accountId, { debits: sums.debits + debits, credits: sums.credits + credits });
  }
}

describe('the balance read model under concurrent postings', () => {
  let fixture: BillingFixture;

  beforeAll(async () => {
    // Half as many connections as writers: the README's connection budget gives a jest worker about 15, and
    // writers queueing for a connection still keep every connection busy with a transaction.
    fixture = await startBillingFixture({ poolSize: WRITERS / 2 });
  });

  afterAll(async () => {
    await fixture?.close();
  });

  it(`equals the sums of the transfers after ${POSTINGS} random postings from ${WRITERS} concurrent writers`, async () => {
    const random = generator(SEED);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const amount = (max: number) => BigInt(1 + Math.floor(random() * max));

    // A few organizations in two currencies, each with two departments of two projects; no money yet.
    const organizations: Organization[] = [];
    for (const currency of ['USD', 'USD', 'USD', 'USD', 'EUR', 'EUR']) {
      const { organizationId } = await fixture.organization({ currency });
      const departments = [randomUUID(), randomUUID()];
      organizations.push({
        id: organizationId,
        currency,
        accounts: await fixture.ledger.organizationAccounts(organizationId),
        pools: departments.flatMap((departmentId) => [randomUUID(), randomUUID()].map((projectId) => ({ departmentId, projectId }))),
      });
    }
    const platform = new Map<string, Record<'revenue' | 'payment_clearing' | 'promotions', AccountFacts>>();
    for (const currency of ['USD', 'EUR']) {
      platform.set(currency, {
        revenue: await fixture.ledger.accounts.platformAccount('revenue', currency),
        payment_clearing: await fixture.ledger.accounts.platformAccount('payment_clearing', currency),
        promotions: await fixture.ledger.accounts.platformAccount('promotions', currency),
      });
    }
    const kinds = new Map<string, AccountFacts>();
    for (const organization of organizations) {
      for (const kind of ['customer_balance', 'promotional_credit', 'disputes_held'] as const) kinds.set(organization.accounts[kind].id, organization.accounts[kind]);
    }
    for (const accounts of platform.values()) for (const account of Object.values(accounts)) kinds.set(account.id, account);
    const witness = new Witness(kinds);

    /** A posting of raw transfers: a dispute hold, a refund of spend, or spend split over both spendable accounts. */
    const transferPosting = (organization: Organization): PostingSpec => {
      const { accounts } = organization;
      const revenue = platform.get(organization.currency)!.revenue.id;
      const pool = pick(organization.pools);
      const shape = pick(['dispute_hold', 'refund', 'split_spend'] as const);
      const transfers =
        shape === 'dispute_hold'
          ? [{ debitAccountId: accounts.customer_balance.id, creditAccountId: accounts.disputes_held.id, amount: amount(500), code: 'dispute_hold' }]
          : shape === 'refund'
            ? [{ debitAccountId: revenue, creditAccountId: accounts.customer_balance.id, amount: amount(300), code: 'refund' }]
            : [
                { debitAccountId: accounts.promotional_credit.id, creditAccountId: revenue, amount: amount(200), code: 'promotional_spend' },
                { debitAccountId: accounts.customer_balance.id, creditAccountId: revenue, amount: amount(2_000), code: 'spend' },
              ];
      return {
        id: `random:${randomUUID()}`,
        kind: shape,
        currency: organization.currency,
        organizationId: organization.id,
        departmentId: pool.departmentId,
        projectId: pool.projectId,
        transfers,
        actor: testActor,
      };
    };

    const done: PostingSpec[] = [];
    let created = 0;
    let repeats = 0;
    const writer = async () => {
      while (created < POSTINGS) {
        const organization = pick(organizations);
        const roll = random();
        let results: PostingResult[];
        if (roll < 0.35) {
          const pool = pick(organization.pools);
          results = [
            await inTransaction(fixture.database.pool, (tx) =>
              fixture.ledger.chargeIn(tx, {
                postingId: `charge:${randomUUID()}`,
                kind: 'usage',
                organizationId: organization.id,
                ...pool,
                amount: amount(5_000),
                actor: testActor,
              }),
            ),
          ];
        } else if (roll < 0.55) {
          const promotional = random() < 0.3;
          results = [
            await inTransaction(fixture.database.pool, (tx) =>
              fixture.ledger.creditIn(tx, {
                postingId: `credit:${randomUUID()}`,
                kind: promotional ? 'promotional_grant' : 'payment',
                organizationId: organization.id,
                amount: amount(20_000),
                to: promotional ? 'promotional_credit' : 'customer_balance',
                from: promotional ? 'promotions' : 'payment_clearing',
                actor: testActor,
              }),
            ),
          ];
        } else if (roll < 0.8) {
          const spec = transferPosting(organization);
          results = await fixture.ledger.post([spec]);
          done.push(spec);
        } else if (roll < 0.92) {
          // A batch over several organizations: one transaction, their funds rows locked in id order.
          const specs = [transferPosting(organization), transferPosting(pick(organizations)), transferPosting(pick(organizations))];
          results = await fixture.ledger.post(specs);
          done.push(...specs);
        } else if (roll < 0.96 && done.length > 0) {
          // A retry of a posting already made: the first result, nothing written.
          results = await fixture.ledger.post([pick(done)]);
          expect(results[0]!.created).toBe(false);
          repeats += 1;
        } else {
          // Two writers racing with the same new posting: exactly one writes it.
          const spec = transferPosting(organization);
          const raced = await Promise.all([fixture.ledger.post([spec]), fixture.ledger.post([spec])]);
          expect(raced.map(([result]) => result!.created).sort()).toEqual([false, true]);
          expect(raced[0]![0]!.transfers).toEqual(raced[1]![0]!.transfers);
          results = raced.flat();
          done.push(spec);
        }
        witness.record(results);
        created += results.filter((result) => result.created).length;
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, writer));
    expect(created).toBeGreaterThanOrEqual(POSTINGS);
    expect(repeats).toBeGreaterThan(0);

    // 1. The check billing:verify and the scheduled check run.
    const check = await checkLedger(fixture.database.pool, { trigger: 'verify' });
    expect({ seed: SEED, mismatches: check.mismatches }).toEqual({ seed: SEED, mismatches: [] });

    // 2. Plain SQL: every account's balance rows, summed over shards, against its transfers.
    const { rows: accounts } = await fixture.admin.query<{ id: string; recorded: string; expected: string; debits: string; credits: string }>(
      `SELECT a.id,
              (SELECT coalesce(sum(credits_posted - debits_posted), 0) FROM account_balances b WHERE b.account_id = a.id)::text AS recorded,
              ((SELECT coalesce(sum(amount), 0) FROM transfers WHERE credit_account_id = a.id)
                - (SELECT coalesce(sum(amount), 0) FROM transfers WHERE debit_account_id = a.id))::text AS expected,
              (SELECT coalesce(sum(debits_posted), 0) FROM account_balances b WHERE b.account_id = a.id)::text AS debits,
              (SELECT coalesce(sum(credits_posted), 0) FROM account_balances b WHERE b.account_id = a.id)::text AS credits
       FROM accounts a`,
    );
    for (const account of accounts) expect({ account: account.id, balance: account.recorded }).toEqual({ account: account.id, balance: account.expected });

    // 3. The test's own witness: every posting it saw committed, and nothing else (the accounts started empty).
    for (const account of accounts) {
      const seen = witness.accounts.get(account.id) ?? { debits: 0n, credits: 0n };
      expect({ account: account.id, debits: account.debits, credits: account.credits }).toEqual({
        account: account.id,
        debits: seen.debits.toString(),
        credits: seen.credits.toString(),
      });
    }
    const { rows: counts } = await fixture.admin.query<{ postings: number; transfers: number }>(
      'SELECT (SELECT count(*) FROM postings)::int AS postings, (SELECT count(*) FROM transfers)::int AS transfers',
    );
    expect(counts[0]).toEqual({ postings: witness.postings, transfers: witness.transfers });

    const { rows: funds } = await fixture.admin.query<{ organization_id: string; paid: string; promotional: string; reserved: string }>(
      'SELECT organization_id, paid::text, promotional::text, reserved::text FROM organization_funds ORDER BY organization_id',
    );
    expect(funds).toEqual(
      organizations
        .map((organization) => ({
          organization_id: organization.id,
          paid: witness.balance(organization.accounts.customer_balance.id).toString(),
          promotional: witness.balance(organization.accounts.promotional_credit.id).toString(),
          reserved: '0',
        }))
        .sort((a, b) => a.organization_id.localeCompare(b.organization_id)),
    );
    const { rows: budgets } = await fixture.admin.query<{ pool_level: string; pool_id: string; spent: string }>(
      'SELECT pool_level, pool_id, spent::text FROM budget_spend WHERE spent <> 0',
    );
    expect(new Map(budgets.map((row) => [`${row.pool_level}:${row.pool_id}`, row.spent]))).toEqual(
      new Map([...witness.spend].filter(([, spent]) => spent !== 0n).map(([pool, spent]) => [pool, spent.toString()])),
    );
  }, 300_000);
});
