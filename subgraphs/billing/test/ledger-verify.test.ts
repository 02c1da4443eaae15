import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createLogger } from '@aifactory/logging';
import { ServiceMetrics } from '@aifactory/telemetry';
import { uniqueEventSubjectPrefix } from '@aifactory/testing';
import { inTransaction } from '../src/data/transactions.js';
import { checkLedger, describeMismatch, type LedgerMismatch } from '../src/domain/ledger-check.js';
import { BillingStatus } from '../src/domain/service-status.js';
import { runScheduledLedgerCheck, startLedgerCheck } from '../src/workers/ledger-check.js';
import { startBillingFixture, testActor, type BillingFixture } from './billing-fixture.js';

// `npm run billing:verify` runs the built CLI: npm test builds before it tests.
const VERIFY_CLI = fileURLToPath(new URL('../dist/cli/verify.js', import.meta.url));
const STATUS_EVENT = 'platform.status.billing.changed';
const actor = { type: 'system' as const, id: 'ledger-verify-test' };

interface CliRun {
  exitCode: number;
  report: { ok: boolean; mismatches: LedgerMismatch[]; status: { status: string; reason: string | null; version: number } };
  stderr: string;
}

describe('billing:verify and the scheduled ledger check', () => {
  let fixture: BillingFixture;
  let status: BillingStatus;
  const subjectPrefix = uniqueEventSubjectPrefix();
  let organizationId: string;
  let departmentId: string;
  let projectId: string;
  let customerBalance: string;
  let revenue: string;

  const verify = async (): Promise<CliRun> => {
    const env = { ...process.env, NODE_OPTIONS: '', DATABASE_URL: fixture.db.appUrl('billing'), LOG_LEVEL: 'silent', EVENT_SUBJECT_PREFIX: subjectPrefix };
    try {
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [VERIFY_CLI], { env });
      return { exitCode: 0, report: JSON.parse(stdout), stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { exitCode: failed.code, report: JSON.parse(failed.stdout), stderr: failed.stderr };
    }
  };

  const statusEvents = async () => {
    const { rows } = await fixture.admin.query<{ subject: string; aggregate_id: string; aggregate_version: number; payload: { service: string; status: string; reason: string | null } }>(
      'SELECT subject, aggregate_id, aggregate_version, payload FROM outbox_events WHERE type = $1 ORDER BY aggregate_version',
      [STATUS_EVENT],
    );
    return rows;
  };

  const statusRow = async () => (await fixture.admin.query('SELECT status, reason, version FROM service_status WHERE service = $1', ['billing'])).rows[0];

  /** Runs `sql` by hand as the superuser, then proves the ledger, then puts the row back. */
  const corrupted = async (sql: string, undo: string, params: unknown[], undoParams = params): Promise<LedgerMismatch[]> => {
    await fixture.admin.query(sql, params);
    try {
      return (await checkLedger(fixture.database.pool, { trigger: 'verify' })).mismatches;
    } finally {
      await fixture.admin.query(undo, undoParams);
    }
  };

  beforeAll(async () => {
    fixture = await startBillingFixture();
    status = new BillingStatus(fixture.database.pool, { subjectPrefix });
    ({ organizationId, departmentId, projectId } = await fixture.organization({ paid: 50_000n, promotional: 2_000n }));
    customerBalance = (await fixture.ledger.organizationAccounts(organizationId)).customer_balance.id;
    revenue = (await fixture.ledger.accounts.platformAccount('revenue', 'USD')).id;
    // Spend: budget rows for the organization, department and project pools, and a revenue shard row.
    await inTransaction(fixture.database.pool, (tx) =>
      fixture.ledger.chargeIn(tx, { postingId: `usage:${randomUUID()}`, kind: 'usage', organizationId, departmentId, projectId, amount: 3_000n, actor: testActor }),
    );
  });

  afterAll(async () => {
    await fixture?.close();
  });

  it('proves a consistent ledger: exit 0, no mismatch, billing stays operational and nothing is announced', async () => {
    const run = await verify();
    expect(run.exitCode).toBe(0);
    expect(run.report.ok).toBe(true);
    expect(run.report.mismatches).toEqual([]);
    expect(run.report.status).toEqual({ status: 'operational', reason: null, version: 0 });
    expect(await statusEvents()).toEqual([]);
  });

  it('finds a hand-corrupted balance row with checkLedger, naming the account', async () => {
    const mismatches = await corrupted(
      'UPDATE account_balances SET credits_posted = credits_posted + 7 WHERE account_id = $1',
      'UPDATE account_balances SET credits_posted = credits_posted - 7 WHERE account_id = $1',
      [customerBalance],
    );
    // 50,000 credited, 1,000 of the 3,000 charge paid from it (2,000 promotional first).
    expect(mismatches).toEqual([
      {
        kind: 'account_balance',
        accountId: customerBalance,
        accountKind: 'customer_balance',
        organizationId,
        currency: 'USD',
        expected: { debits: '1000', credits: '50000', balance: '49000' },
        recorded: { debits: '1000', credits: '50007', balance: '49007' },
      },
    ]);
    const { rows } = await fixture.admin.query('SELECT trigger, ok, jsonb_array_length(mismatches) AS n FROM ledger_checks ORDER BY id DESC LIMIT 1');
    expect(rows[0]).toEqual({ trigger: 'verify', ok: false, n: 1 });
  });

  it('fails billing:verify with exit 1 naming the account, and degrades billing with one status event', async () => {
    await fixture.admin.query('UPDATE account_balances SET credits_posted = credits_posted + 7 WHERE account_id = $1', [customerBalance]);
    const run = await verify();
    expect(run.exitCode).toBe(1);
    expect(run.report.ok).toBe(false);
    expect(run.report.mismatches).toEqual([expect.objectContaining({ kind: 'account_balance', accountId: customerBalance, organizationId })]);
    expect(run.stderr).toContain(`account ${customerBalance} (customer_balance account of organization ${organizationId}, USD)`);
    expect(run.report.status).toMatchObject({ status: 'degraded', version: 1 });

    expect(await statusRow()).toEqual({ status: 'degraded', reason: expect.stringMatching(/^Ledger check: 1 mismatch /), version: 1 });
    expect(await statusEvents()).toEqual([
      {
        subject: `${subjectPrefix}.${STATUS_EVENT}`,
        aggregate_id: 'billing',
        aggregate_version: 1,
        payload: expect.objectContaining({ service: 'billing', status: 'degraded', reason: expect.stringMatching(/^Ledger check: 1 mismatch /) }),
      },
    ]);
  });

  it('announces nothing more when billing:verify finds the same mismatch again', async () => {
    const run = await verify();
    expect(run.exitCode).toBe(1);
    expect(await statusEvents()).toHaveLength(1);
  });

  it('reports the mismatch and the unverified age on /metrics', async () => {
    const metrics = new ServiceMetrics('billing');
    // The round it runs at start skips: billing:verify just checked.
    const worker = startLedgerCheck({ pool: fixture.database.pool, status, everyMs: 3_600_000, logger: createLogger({ service: 'billing', level: 'silent' }), metrics });
    await worker.stop();
    const body = (await metrics.render()).body;
    expect(body).toMatch(/^aif_billing_ledger_mismatches\{service="billing"\} 1$/m);
    const age = Number(/^aif_billing_balance_verified_age_seconds\{service="billing"\} (\S+)$/m.exec(body)?.[1]);
    // Since the first test's clean check, which is older than the failing ones.
    expect(age).toBeGreaterThan(0);
    expect(age).toBeLessThan(600);
  });

  it('passes billing:verify again once the row is repaired, and returns billing to operational with a second event', async () => {
    await fixture.admin.query('UPDATE account_balances SET credits_posted = credits_posted - 7 WHERE account_id = $1', [customerBalance]);
    const run = await verify();
    expect(run.exitCode).toBe(0);
    expect(run.report.status).toEqual({ status: 'operational', reason: null, version: 2 });
    const events = await statusEvents();
    expect(events.map((event) => [event.aggregate_version, event.payload.status, event.payload.reason])).toEqual([
      [1, 'degraded', expect.any(String)],
      [2, 'operational', null],
    ]);

    const again = await verify();
    expect(again.exitCode).toBe(0);
    expect(await statusEvents()).toHaveLength(2);
  });

  it("names the organization whose funds row disagrees with its accounts", async () => {
    const mismatches = await corrupted(
      'UPDATE organization_funds SET paid = paid + 5 WHERE organization_id = $1',
      'UPDATE organization_funds SET paid = paid - 5 WHERE organization_id = $1',
      [organizationId],
    );
    expect(mismatches).toEqual([
      { kind: 'organization_funds', organizationId, field: 'paid', accountIds: [customerBalance], expected: '49000', recorded: '49005' },
    ]);
    expect(describeMismatch(mismatches[0]!)).toBe(`organization ${organizationId}: organization_funds.paid is 49005, account ${customerBalance} say 49000`);
  });

  it('names the budget pool and month whose spend disagrees with the spend transfers', async () => {
    const mismatches = await corrupted(
      "UPDATE budget_spend SET spent = spent + 9 WHERE pool_level = 'project' AND pool_id = $1",
      "UPDATE budget_spend SET spent = spent - 9 WHERE pool_level = 'project' AND pool_id = $1",
      [projectId],
    );
    const { rows } = await fixture.admin.query<{ period: string }>("SELECT date_trunc('month', now() AT TIME ZONE 'UTC')::date::text AS period");
    expect(mismatches).toEqual([
      { kind: 'budget_spend', organizationId, poolLevel: 'project', poolId: projectId, period: rows[0]!.period, field: 'spent', expected: '3000', recorded: '3009' },
    ]);
  });

  it('names the organization and every pool of a pending reservation the read model does not hold', async () => {
    const id = randomUUID();
    const mismatches = await corrupted(
      `INSERT INTO reservations (id, organization_id, department_id, project_id, currency, amount, period, caller, idempotency_key,
         fingerprint, actor, correlation_id, expires_at)
       SELECT $1, $2, $3, $4, 'USD', 400, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 'gpuaas', 'by-hand', 'x',
         '{"type":"service","id":"gpuaas"}', 'c', now() + interval '1 hour'`,
      'DELETE FROM reservations WHERE id = $1',
      [id, organizationId, departmentId, projectId],
      [id],
    );
    expect(mismatches).toEqual([
      { kind: 'organization_funds', organizationId, field: 'reserved', accountIds: [], expected: '400', recorded: '0' },
      ...(
        [
          ['department', departmentId],
          ['organization', organizationId],
          ['project', projectId],
        ] as const
      ).map(([poolLevel, poolId]) => expect.objectContaining({ kind: 'budget_spend', poolLevel, poolId, field: 'reserved', expected: '400', recorded: '0' })),
    ]);
  });

  it('names a platform account whose balance disagrees on one of its shards', async () => {
    const { rows } = await fixture.admin.query<{ shard: number }>('SELECT shard FROM account_balances WHERE account_id = $1 LIMIT 1', [revenue]);
    const mismatches = await corrupted(
      'UPDATE account_balances SET debits_posted = debits_posted + 1 WHERE account_id = $1 AND shard = $2',
      'UPDATE account_balances SET debits_posted = debits_posted - 1 WHERE account_id = $1 AND shard = $2',
      [revenue, rows[0]!.shard],
    );
    expect(mismatches).toEqual([
      expect.objectContaining({ kind: 'account_balance', accountId: revenue, accountKind: 'revenue', organizationId: null, expected: expect.objectContaining({ debits: '0' }), recorded: expect.objectContaining({ debits: '1' }) }),
    ]);
    expect(describeMismatch(mismatches[0]!)).toContain(`account ${revenue} (revenue platform account, USD)`);
  });

  it('lets a check of a later snapshot decide: a slower clean check never lifts what a newer one found', async () => {
    const clean = await checkLedger(fixture.database.pool, { trigger: 'scheduled' });
    await fixture.admin.query('UPDATE account_balances SET debits_posted = debits_posted + 3 WHERE account_id = $1', [customerBalance]);
    const dirty = await checkLedger(fixture.database.pool, { trigger: 'verify' });
    expect([clean.ok, dirty.ok]).toEqual([true, false]);

    expect((await status.applyLedgerCheck(dirty, actor)).status).toMatchObject({ status: 'degraded', version: 3 });
    expect(await status.applyLedgerCheck(clean, actor)).toMatchObject({ changed: false, status: { status: 'degraded', version: 3 } });

    await fixture.admin.query('UPDATE account_balances SET debits_posted = debits_posted - 3 WHERE account_id = $1', [customerBalance]);
    const repaired = await checkLedger(fixture.database.pool, { trigger: 'verify' });
    expect(await status.applyLedgerCheck(repaired, actor)).toMatchObject({ changed: true, status: { status: 'operational', version: 4 } });
    expect((await statusEvents()).map((event) => event.aggregate_version)).toEqual([1, 2, 3, 4]);
  });

  it('runs the scheduled check on one instance at a time, and not again within its interval', async () => {
    const other = await fixture.db.admin();
    await other.query("SELECT pg_advisory_lock(hashtext('billing.ledger_check'))");
    expect(await runScheduledLedgerCheck({ pool: fixture.database.pool, status, everyMs: 1 })).toEqual({ ran: false, reason: 'another instance is checking' });
    await other.query("SELECT pg_advisory_unlock(hashtext('billing.ledger_check'))");

    // The check of the test above is seconds old.
    expect(await runScheduledLedgerCheck({ pool: fixture.database.pool, status, everyMs: 600_000 })).toEqual({ ran: false, reason: 'checked recently' });

    const outcome = await runScheduledLedgerCheck({ pool: fixture.database.pool, status, everyMs: 1 });
    expect(outcome).toMatchObject({ ran: true, check: { trigger: 'scheduled', ok: true, mismatches: [] }, statusChanged: false });
  });
});
