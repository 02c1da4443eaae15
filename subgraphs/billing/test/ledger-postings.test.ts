import { randomUUID } from 'node:crypto';
import type { PostingSpec } from '../src/domain/ledger.js';
import { checkLedger } from '../src/domain/ledger-check.js';
import { inTransaction } from '../src/data/transactions.js';
import { codeOf, startBillingFixture, testActor, type BillingFixture } from './billing-fixture.js';


describe('postings are idempotent by id and all-or-none', () => {
  let fixture: BillingFixture;
  let organizationId: string;
  let departmentId: string;
  let projectId: string;
  let customerBalance: string;
  let promotionalCredit: string;
  let disputesHeld: string;

  /** Everything a posting can change: the ledger's rows and the whole read model. */
  const state = async () => {
    const { rows } = await fixture.admin.query(
      `SELECT (SELECT count(*) FROM postings)::int AS postings,
              (SELECT count(*) FROM transfers)::int AS transfers,
              (SELECT json_agg(b ORDER BY account_id, shard) FROM (SELECT account_id, shard, debits_posted::text, credits_posted::text FROM account_balances) b) AS balances,
              (SELECT json_agg(f ORDER BY organization_id) FROM (SELECT organization_id, paid::text, promotional::text, reserved::text FROM organization_funds) f) AS funds,
              (SELECT json_agg(s ORDER BY pool_level, pool_id, period) FROM (SELECT pool_level, pool_id, period::text, spent::text, reserved::text FROM budget_spend) s) AS budgets`,
    );
    return rows[0];
  };

  const adjustment = (id: string, amount: bigint, credit = () => disputesHeld): PostingSpec => ({
    id,
    kind: 'adjustment',
    currency: 'USD',
    organizationId,
    transfers: [{ debitAccountId: customerBalance, creditAccountId: credit(), amount, code: 'dispute_hold' }],
    actor: testActor,
  });

  beforeAll(async () => {
    fixture = await startBillingFixture();
    ({ organizationId, departmentId, projectId } = await fixture.organization({ paid: 100_000n, promotional: 1_000n }));
    const accounts = await fixture.ledger.organizationAccounts(organizationId);
    customerBalance = accounts.customer_balance.id;
    promotionalCredit = accounts.promotional_credit.id;
    disputesHeld = accounts.disputes_held.id;
  });

  afterAll(async () => {
    await fixture?.close();
  });

  it('changes nothing when a posting id is posted again, and returns the first result', async () => {
    const id = `repeat:${randomUUID()}`;
    const [first] = await fixture.ledger.post([adjustment(id, 250n)]);
    expect(first!.created).toBe(true);
    const after = await state();

    const [again] = await fixture.ledger.post([adjustment(id, 250n)]);
    expect(again!.created).toBe(false);
    expect(again!.posting).toEqual(first!.posting);
    expect(again!.transfers).toEqual(first!.transfers);
    expect(await state()).toEqual(after);
  });

  it('returns the first charge when it is repeated after the balances moved', async () => {
    const charge = (postingId: string) =>
      inTransaction(fixture.database.pool, (tx) =>
        fixture.ledger.chargeIn(tx, { postingId, kind: 'usage', organizationId, departmentId, projectId, amount: 1_500n, actor: testActor }),
      );
    const id = `charge:${randomUUID()}`;
    const first = await charge(id);
    // Promotional credit paid first; the rest came from the paid balance.
    expect(first.transfers.map((t) => [t.code, t.amount])).toEqual([
      ['promotional_spend', 1_000n],
      ['spend', 500n],
    ]);
    const after = await state();

    // Promotional credit is gone now: charged afresh, all of it would be paid. The repeat is the first answer.
    const again = await charge(id);
    expect(again.created).toBe(false);
    expect(again.transfers).toEqual(first.transfers);
    expect(await state()).toEqual(after);
  });

  it('refuses the same posting id with other transfers as BILLING_POSTING_CONFLICT and changes nothing', async () => {
    const id = `conflict:${randomUUID()}`;
    await fixture.ledger.post([adjustment(id, 300n)]);
    const after = await state();

    expect(await codeOf(() => fixture.ledger.post([adjustment(id, 301n)]))).toBe('BILLING_POSTING_CONFLICT');
    expect(await codeOf(() => fixture.ledger.post([adjustment(id, 300n, () => promotionalCredit)]))).toBe('BILLING_POSTING_CONFLICT');
    expect(await codeOf(() => fixture.ledger.post([{ ...adjustment(id, 300n), kind: 'refund' }]))).toBe('BILLING_POSTING_CONFLICT');
    expect(await state()).toEqual(after);
  });

  it('writes nothing of a batch when one of its postings conflicts, even after the others were inserted', async () => {
    const used = `used:${randomUUID()}`;
    await fixture.ledger.post([adjustment(used, 10n)]);
    const after = await state();
    const fresh = [`fresh:${randomUUID()}`, `fresh:${randomUUID()}`];

    // The conflict is found after the fresh postings' rows went in: the transaction takes them back.
    const code = await codeOf(() => fixture.ledger.post([adjustment(fresh[0]!, 20n), adjustment(used, 11n), adjustment(fresh[1]!, 30n)]));
    expect(code).toBe('BILLING_POSTING_CONFLICT');
    expect(await state()).toEqual(after);
    const { rowCount } = await fixture.admin.query('SELECT 1 FROM postings WHERE id = ANY($1)', [fresh]);
    expect(rowCount).toBe(0);
  });

  it('writes nothing of a batch when one of its postings is invalid', async () => {
    const after = await state();
    const code = await codeOf(() =>
      fixture.ledger.post([
        adjustment(`valid:${randomUUID()}`, 40n),
        { ...adjustment(`invalid:${randomUUID()}`, 40n), transfers: [{ debitAccountId: customerBalance, creditAccountId: randomUUID(), amount: 40n, code: 'dispute_hold' }] },
      ]),
    );
    expect(code).toBe('BILLING_ACCOUNT_NOT_FOUND');
    expect(await state()).toEqual(after);
  });

  it('writes all of a batch, each posting once, when every posting is valid', async () => {
    const ids = [`batch:${randomUUID()}`, `batch:${randomUUID()}`, `batch:${randomUUID()}`];
    const results = await fixture.ledger.post(ids.map((id, index) => adjustment(id, BigInt(index + 1) * 100n)));
    expect(results.map((r) => [r.posting.id, r.created, r.transfers.length])).toEqual(ids.map((id) => [id, true, 1]));
    const { rows } = await fixture.admin.query<{ id: string; amount: string }>(
      'SELECT p.id, t.amount::text FROM postings p JOIN transfers t ON t.posting_id = p.id WHERE p.id = ANY($1) ORDER BY t.amount',
      [ids],
    );
    expect(rows).toEqual(ids.map((id, index) => ({ id, amount: String((index + 1) * 100) })));
  });

  it('leaves a read model equal to the ledger', async () => {
    const check = await checkLedger(fixture.database.pool, { trigger: 'verify' });
    expect(check.mismatches).toEqual([]);
  });
});
