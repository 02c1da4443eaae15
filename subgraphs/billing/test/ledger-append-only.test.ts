import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { AppError } from '@aifactory/errors';
import { checkLedger } from '../src/domain/ledger-check.js';
import { startBillingFixture, testActor, type BillingFixture } from './billing-fixture.js';

/** What a statement was refused with: the SQLSTATE, or the AppError code. */
async function refusal(work: () => Promise<unknown>): Promise<string> {
  try {
    await work();
  } catch (error) {
    if (error instanceof AppError) return error.code;
    return (error as { code?: string }).code ?? `no code: ${String(error)}`;
  }
  return 'accepted';
}

describe('the ledger is append-only', () => {
  let fixture: BillingFixture;
  let app: pg.Client;
  let owner: pg.Client;
  let usd: { organizationId: string; customerBalance: string; promotionalCredit: string };
  let eurCustomerBalance: string;
  let before: { postings: number; transfers: number; amount: string };

  const ledgerRows = async () => {
    const { rows } = await fixture.admin.query<{ postings: number; transfers: number; amount: string }>(
      `SELECT (SELECT count(*) FROM postings)::int AS postings, (SELECT count(*) FROM transfers)::int AS transfers,
              (SELECT coalesce(sum(amount), 0)::text FROM transfers) AS amount`,
    );
    return rows[0]!;
  };

  beforeAll(async () => {
    fixture = await startBillingFixture();
    // The fixture's credits are postings: the UPDATE and DELETE below have rows to touch.
    const { organizationId } = await fixture.organization({ paid: 10_000n, promotional: 500n });
    const accounts = await fixture.ledger.organizationAccounts(organizationId);
    usd = { organizationId, customerBalance: accounts.customer_balance.id, promotionalCredit: accounts.promotional_credit.id };
    const eur = await fixture.organization({ currency: 'EUR', paid: 700n });
    eurCustomerBalance = (await fixture.ledger.organizationAccounts(eur.organizationId)).customer_balance.id;

    app = new pg.Client({ connectionString: fixture.db.appUrl('billing') });
    await app.connect();
    await app.query('SET search_path TO billing');
    owner = await fixture.db.admin();
    await owner.query('SET search_path TO billing');
    await owner.query(`SET ROLE ${fixture.db.layout.rolePrefix}billing_owner`);
    before = await ledgerRows();
    expect(before.transfers).toBeGreaterThanOrEqual(3);
  });

  afterAll(async () => {
    await app?.end();
    await fixture?.close();
  });

  const roles: [string, () => pg.Client, string][] = [
    // The app role never held UPDATE, DELETE or TRUNCATE on the ledger: Postgres refuses before any trigger runs.
    ['the app role', () => app, '42501'],
    // The owner holds every privilege: the triggers refuse it (LDG01).
    ['the owner role', () => owner, 'LDG01'],
  ];

  describe.each(roles)('as %s', (_role, client, code) => {
    it.each([
      ['UPDATE transfers', 'UPDATE transfers SET amount = amount + 1'],
      ['DELETE FROM transfers', 'DELETE FROM transfers'],
      ['TRUNCATE transfers', 'TRUNCATE transfers'],
      ['UPDATE postings', "UPDATE postings SET kind = 'rewritten'"],
      ['DELETE FROM postings', 'DELETE FROM postings'],
      ['TRUNCATE postings CASCADE', 'TRUNCATE postings CASCADE'],
    ])('refuses %s and leaves every row as it was', async (_statement, sql) => {
      expect(await refusal(() => client().query(sql))).toBe(code);
      expect(await ledgerRows()).toEqual(before);
    });

    const transfer = async (debit: () => string, credit: () => string, amount: string, currency: string) => {
      const db = client();
      await db.query('BEGIN');
      try {
        const postingId = `raw:${randomUUID()}`;
        await db.query(
          `INSERT INTO postings (id, kind, organization_id, currency, fingerprint, actor, correlation_id)
           VALUES ($1, 'raw_insert', $2, $3, 'raw', '{"type":"user","id":"raw"}', 'raw')`,
          [postingId, usd.organizationId, currency],
        );
        await db.query(
          `INSERT INTO transfers (posting_id, ordinal, debit_account_id, credit_account_id, amount, currency, code, organization_id)
           VALUES ($1, 0, $2, $3, $4, $5, 'raw_insert', $6)`,
          [postingId, debit(), credit(), amount, currency, usd.organizationId],
        );
      } finally {
        await db.query('ROLLBACK');
      }
    };

    it('refuses a zero transfer with a raw INSERT', async () => {
      expect(await refusal(() => transfer(() => usd.customerBalance, () => usd.promotionalCredit, '0', 'USD'))).toBe('23514');
    });

    it('refuses a negative transfer with a raw INSERT', async () => {
      expect(await refusal(() => transfer(() => usd.customerBalance, () => usd.promotionalCredit, '-5', 'USD'))).toBe('23514');
    });

    it('refuses a transfer between accounts of two currencies with a raw INSERT', async () => {
      expect(await refusal(() => transfer(() => usd.customerBalance, () => eurCustomerBalance, '5', 'USD'))).toBe('23503');
      expect(await refusal(() => transfer(() => usd.customerBalance, () => eurCustomerBalance, '5', 'EUR'))).toBe('23503');
    });

    it('refuses a transfer in another currency than both its accounts with a raw INSERT', async () => {
      expect(await refusal(() => transfer(() => usd.customerBalance, () => usd.promotionalCredit, '5', 'EUR'))).toBe('23503');
    });

    it('accepts a well-formed raw INSERT, so the refusals above are the checks at work', async () => {
      expect(await refusal(() => transfer(() => usd.customerBalance, () => usd.promotionalCredit, '5', 'USD'))).toBe('accepted');
    });
  });

  describe('through the Ledger API', () => {
    const post = (amount: bigint, credit: () => string) =>
      fixture.ledger.post([
        {
          id: `api:${randomUUID()}`,
          kind: 'adjustment',
          currency: 'USD',
          organizationId: usd.organizationId,
          transfers: [{ debitAccountId: usd.customerBalance, creditAccountId: credit(), amount, code: 'adjustment' }],
          actor: testActor,
        },
      ]);

    it('refuses a zero transfer with BILLING_AMOUNT_INVALID', async () => {
      expect(await refusal(() => post(0n, () => usd.promotionalCredit))).toBe('BILLING_AMOUNT_INVALID');
      expect(await ledgerRows()).toEqual(before);
    });

    it('refuses a negative transfer with BILLING_AMOUNT_INVALID', async () => {
      expect(await refusal(() => post(-5n, () => usd.promotionalCredit))).toBe('BILLING_AMOUNT_INVALID');
      expect(await ledgerRows()).toEqual(before);
    });

    it('refuses a transfer to an account in another currency with BILLING_CURRENCY_MISMATCH', async () => {
      expect(await refusal(() => post(5n, () => eurCustomerBalance))).toBe('BILLING_CURRENCY_MISMATCH');
      expect(await ledgerRows()).toEqual(before);
    });
  });

  it('still balances after every refusal', async () => {
    const check = await checkLedger(fixture.database.pool, { trigger: 'verify' });
    expect(check.mismatches).toEqual([]);
    expect(check.ok).toBe(true);
  });
});
