import { randomUUID } from 'node:crypto';
import type { PolicyKeyDef, PolicySnapshot } from '@aifactory/authz';
import {
  AccountDirectory,
  AccountService,
  AccountStore,
  inTransaction,
  Ledger,
  openBillingDatabase,
  Reservations,
  type PolicySource,
  type PostingSpec,
} from '@aifactory/billing/ledger-kit';
import { loadRegistryData } from '@aifactory/contracts';
import { createTestDatabase } from '@aifactory/testing';
import type pg from 'pg';
import { inBenchWorkspace, parseSideBySideArgs } from './bench-run.js';
import { fmt, measureSideBySide, type SideRow } from './side-by-side.js';
import { dropWhenIdle, progress } from './teardown.js';

const USAGE =
  'usage: npm run bench -- ledger [--duration 8 --concurrency 8 --rounds 4 --batch 500 --organizations 64]\n';
const ACTOR = { type: 'service' as const, id: 'ledger-bench' };

interface Organization {
  id: string;
  customer: string;
  departmentId: string;
  projectId: string;
}

/**
 * The ledger against raw Postgres, side by side in one run: a posting per
 * transaction (a charge: the organization's funds row locked, its posting and
 * transfer written, balances, funds and three budget rows updated) against
 * a plain INSERT of the same posting and transfer rows; then batches of
 * postings in one transaction against one multi-row INSERT of the same rows;
 * then reservations (the funds row and three budget rows held in one
 * statement, the reservation written) against a plain INSERT of the same
 * reservation row.
 */
export async function runLedgerBench(args: string[]): Promise<number> {
  const parsed = parseSideBySideArgs(args, { batch: '500', organizations: '64' }, USAGE);
  if (!parsed) return 2;
  const { durationMs, concurrency, rounds, counts } = parsed;
  return inBenchWorkspace('ledger', async (_workDir, teardown) => {
    progress('ledger: private database');
    const db = await createTestDatabase({ subgraphs: ['billing'] });
    teardown.add('drop the private database', () => dropWhenIdle(db));
    const database = openBillingDatabase({ DATABASE_URL: db.appUrl('billing'), DB_POOL_SIZE: concurrency + 2 });
    teardown.add("close the ledger's pool", () => database.close());
    const directory = new AccountDirectory(database.pool);
    const ledger = new Ledger(database.pool, directory);
    const organizations = await openOrganizations(ledger, directory, new AccountService(new AccountStore(database.prisma, database.pool)), counts.organizations!);
    const revenue = (await directory.platformAccount('revenue', 'USD')).id;
    const pick = () => organizations[Math.floor(Math.random() * organizations.length)]!;

    const single = await measureSideBySide(
      async () => {
        const org = pick();
        await inTransaction(database.pool, (tx) =>
          ledger.chargeIn(tx, { postingId: randomUUID(), kind: 'charge', organizationId: org.id, departmentId: org.departmentId, projectId: org.projectId, amount: 1n, actor: ACTOR }),
        );
      },
      () => rawInsert(database.pool, [rawRow(pick(), revenue)]),
      { name: 'one posting per transaction', durationMs, concurrency, rounds },
    );

    const batch = counts.batch!;
    const batched = await measureSideBySide(
      async () => {
        await ledger.post(Array.from({ length: batch }, () => chargeSpec(pick(), revenue)));
      },
      () => rawInsert(database.pool, Array.from({ length: batch }, () => rawRow(pick(), revenue))),
      { name: `batches of ${batch}`, durationMs, concurrency, rounds },
    );

    await registerProjects(database.pool, organizations);
    const reservations = new Reservations(database.pool, ledger);
    const policy = policyOf(organizations);
    const reserve = (org: Organization) =>
      reservations.reserve(
        { caller: 'gpuaas', organizationId: org.id, projectId: org.projectId, amount: 1n, ttlSeconds: 600, idempotencyKey: randomUUID(), actor: ACTOR, correlationId: 'bench' },
        policy,
      );
    const reserved = await measureSideBySide(
      async () => {
        await reserve(pick());
      },
      () => rawReservation(database.pool, pick()),
      { name: 'reserve', durationMs, concurrency, rounds },
    );
    const cycle = await measureSideBySide(
      async () => {
        const { reservation } = await reserve(pick());
        await reservations.post('gpuaas', reservation.id, 1n, ACTOR, 'bench');
      },
      async () => {
        const org = pick();
        await rawReservation(database.pool, org);
        await rawInsert(database.pool, [rawRow(org, revenue)]);
      },
      { name: 'reserve then post', durationMs, concurrency, rounds },
    );

    process.stdout.write(
      `\n## Ledger postings against raw INSERTs (${concurrency} concurrent clients, ${counts.organizations} organizations)\n\n` +
        postingsTable([
          ['one per transaction', single.on, single.off, 1],
          [`batches of ${batch}`, batched.on, batched.off, batch],
        ]) +
        `\n## Reservations against raw INSERTs (${concurrency} concurrent clients)\n\n` +
        reservationsTable([
          ['reserve', reserved.on, reserved.off],
          ['reserve, then post', cycle.on, cycle.off],
        ]),
    );
    const errors = [single, batched, reserved, cycle].reduce((sum, side) => sum + side.on.errors + side.off.errors, 0);
    return errors === 0 ? 0 : 1;
  });
}

async function openOrganizations(ledger: Ledger, directory: AccountDirectory, accounts: AccountService, count: number): Promise<Organization[]> {
  progress(`ledger: ${count} organizations with a balance`);
  const organizations: Organization[] = [];
  for (let i = 0; i < count; i++) {
    const id = randomUUID();
    await accounts.openOrganizationAccounts({ organizationId: id, currency: 'USD' });
    await ledger.post([
      {
        ...creditSpec(id, (await directory.organization(id))!.customer_balance.id, (await directory.platformAccount('payment_clearing', 'USD')).id),
      },
    ]);
    organizations.push({ id, customer: (await directory.organization(id))!.customer_balance.id, departmentId: randomUUID(), projectId: randomUUID() });
  }
  return organizations;
}

function creditSpec(organizationId: string, customer: string, clearing: string): PostingSpec {
  return {
    id: `bench-credit:${organizationId}`,
    kind: 'admin_credit',
    currency: 'USD',
    organizationId,
    transfers: [{ debitAccountId: clearing, creditAccountId: customer, amount: 1_000_000_000_000n, code: 'admin_credit' }],
    actor: ACTOR,
  };
}

function chargeSpec(org: Organization, revenue: string): PostingSpec {
  return {
    id: randomUUID(),
    kind: 'charge',
    currency: 'USD',
    organizationId: org.id,
    departmentId: org.departmentId,
    projectId: org.projectId,
    transfers: [{ debitAccountId: org.customer, creditAccountId: revenue, amount: 1n, code: 'spend' }],
    actor: ACTOR,
  };
}

interface RawRow {
  postingId: string;
  org: Organization;
  revenue: string;
}

const rawRow = (org: Organization, revenue: string): RawRow => ({ postingId: randomUUID(), org, revenue });

/** The same posting and transfer rows the ledger writes, with nothing else: no checks, no read model. */
async function rawInsert(pool: pg.Pool, rows: readonly RawRow[]): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO postings (id, kind, organization_id, department_id, project_id, currency, fingerprint, actor, correlation_id)
       SELECT p, 'charge', o, d, pr, 'USD', 'raw', $5::jsonb, 'bench' FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::uuid[]) AS r(p, o, d, pr)`,
      [rows.map((r) => r.postingId), rows.map((r) => r.org.id), rows.map((r) => r.org.departmentId), rows.map((r) => r.org.projectId), JSON.stringify(ACTOR)],
    );
    await client.query(
      `INSERT INTO transfers (posting_id, ordinal, debit_account_id, credit_account_id, amount, currency, code, organization_id, department_id, project_id)
       SELECT p, 0, c, v, 1, 'USD', 'spend', o, d, pr FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[]) AS r(p, c, v, o, d, pr)`,
      [
        rows.map((r) => r.postingId),
        rows.map((r) => r.org.customer),
        rows.map((r) => r.revenue),
        rows.map((r) => r.org.id),
        rows.map((r) => r.org.departmentId),
        rows.map((r) => r.org.projectId),
      ],
    );
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

/** Billing learns projects from iam's events; the bench has no iam, so it writes its read model directly. */
async function registerProjects(pool: pg.Pool, organizations: readonly Organization[]): Promise<void> {
  await pool.query(
    `INSERT INTO projects (id, organization_id, department_id, name, status, version)
     SELECT p, o, d, 'bench', 'active', 1 FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS r(p, o, d)`,
    [organizations.map((o) => o.projectId), organizations.map((o) => o.id), organizations.map((o) => o.departmentId)],
  );
}

/** Each organization's policy as IAM would publish it: the registry's defaults, nothing set; always fresh. */
function policyOf(organizations: readonly Organization[]): PolicySource {
  const keys = Object.fromEntries(
    loadRegistryData().policyKeys.map((row): [string, PolicyKeyDef] => [
      row.key,
      { key: row.key, type: row.type, unit: row.unit, default: row.default, direction: row.direction, application: row.application, enumValues: row.enumValues, description: row.description, lifecycle: row.lifecycle },
    ]),
  );
  const snapshots = new Map<string, PolicySnapshot>(
    organizations.map((org) => [
      org.id,
      { version: 1, organizationId: org.id, planId: null, keys, layers: { global: {}, plan: {}, organization: {}, departments: {}, projects: {} }, publishedAt: new Date().toISOString() },
    ]),
  );
  return { ageMs: () => 0, policy: (organizationId) => snapshots.get(organizationId) };
}

/** The same reservation row `reserve` writes, with nothing held and nothing checked. */
async function rawReservation(pool: pg.Pool, org: Organization): Promise<void> {
  await pool.query(
    `INSERT INTO reservations (organization_id, department_id, project_id, currency, amount, period, caller, idempotency_key, fingerprint,
       actor, correlation_id, expires_at)
     VALUES ($1, $2, $3, 'USD', 1, date_trunc('month', now())::date, 'raw', $4, 'raw', $5::jsonb, 'bench', now() + interval '10 minutes')`,
    [org.id, org.departmentId, org.projectId, randomUUID(), JSON.stringify(ACTOR)],
  );
}

function reservationsTable(rows: Array<[string, SideRow, SideRow]>): string {
  let table = '| operation | ledger ops/s | raw ops/s | ledger / raw | ledger p50 ms | ledger p99 ms | raw p50 ms | raw p99 ms | errors |\n|---|---|---|---|---|---|---|---|---|\n';
  for (const [operation, ledger, raw] of rows) {
    table += `| ${operation} | ${fmt(ledger.rps, 0)} | ${fmt(raw.rps, 0)} | ${fmt(ledger.rps / raw.rps, 2)}x | ${fmt(ledger.p50)} | ${fmt(ledger.p99)} | ${fmt(raw.p50)} | ${fmt(raw.p99)} | ${ledger.errors + raw.errors} |\n`;
  }
  return table;
}

function postingsTable(rows: Array<[string, SideRow, SideRow, number]>): string {
  let table = '| mode | ledger postings/s | raw INSERT postings/s | ledger / raw | ledger p50 ms | ledger p99 ms | raw p50 ms | raw p99 ms | errors |\n|---|---|---|---|---|---|---|---|---|\n';
  for (const [mode, ledger, raw, perCall] of rows) {
    table += `| ${mode} | ${fmt(ledger.rps * perCall, 0)} | ${fmt(raw.rps * perCall, 0)} | ${fmt(ledger.rps / raw.rps, 2)}x | ${fmt(ledger.p50)} | ${fmt(ledger.p99)} | ${fmt(raw.p50)} | ${fmt(raw.p99)} | ${ledger.errors + raw.errors} |\n`;
  }
  return table;
}
