// Scratch (H6): times UsageRating.rateBatch alone on pre-ingested batches. Deleted before the report.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { AccountDirectory, AccountService, AccountStore, BalanceAlerts, Ledger, openBillingDatabase, UsageRating } from '@aifactory/billing/ledger-kit';
import { createTestDatabase } from '@aifactory/testing';

const BATCHES = Number(process.argv[2] ?? 30);
const NEWER = Number(process.argv[3] ?? 0);
const db = await createTestDatabase({ subgraphs: ['billing'] });
const database = openBillingDatabase({ DATABASE_URL: db.appUrl('billing'), DB_POOL_SIZE: 10 });
const admin = await db.admin();
await admin.query('SET search_path TO billing');
const accounts = new AccountService(new AccountStore(database.prisma, database.pool));
const scopes = [];
for (let i = 0; i < 20; i += 1) {
  const organizationId = randomUUID();
  await accounts.openOrganizationAccounts({ organizationId, currency: 'USD' });
  for (let p = 0; p < 2; p += 1) scopes.push({ organizationId, departmentId: randomUUID(), projectId: randomUUID() });
}
const batches = [];
const book = randomUUID();
for (let b = 0; b < BATCHES; b += 1) {
  const batchId = randomUUID();
  const n = 1000;
  const scope = Array.from({ length: n }, (_, i) => scopes[(i * 7 + b) % scopes.length]);
  await admin.query(
    `INSERT INTO usage_events (event_id, fingerprint, event_type, product, kind, status, organization_id, department_id, project_id, actor_type, actor_id,
       api_key_id, usage_id, resource_type, resource_id, unit_id, unit_version, quantity, occurred_at, currency, price_book_id, price_book_version,
       unit_price, base_per_unit, low_balance_threshold, batch_id, published_at)
     SELECT gen_random_uuid(), 'f', 'tokenfactory.usage.recorded', 'tokenfactory', 'recorded', 'accepted', o, d, p, 'service_account', 'sa', 'key1',
       gen_random_uuid(), 'model', 'llama', 'token_output', 1, 1 + (random() * 5000)::int, now() - interval '1 minute', 'USD', $4, 1, 0.000123456789, 1, 1000, $5, now()
     FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS u(o, d, p)`,
    [scope.map((s) => s.organizationId), scope.map((s) => s.departmentId), scope.map((s) => s.projectId), book, batchId],
  );
  await admin.query('INSERT INTO usage_batches (id, accepted) VALUES ($1, $2)', [batchId, n]);
  batches.push(batchId);
}
const ratingDb = openBillingDatabase({ DATABASE_URL: db.appUrl('billing'), DB_POOL_SIZE: 10 });
const rating = new UsageRating(ratingDb.pool, new Ledger(ratingDb.pool, new AccountDirectory(ratingDb.pool)), { balanceAlerts: new BalanceAlerts({}) });
const times = new Map();
ratingDb.pool.on('connect', (client) => {
  const query = client.query.bind(client);
  client.query = (...args) => {
    const first = args[0];
    const key = (typeof first === 'string' ? first : (first?.name ?? first?.text ?? '?')).replace(/\s+/g, ' ').trim().slice(0, 50);
    const t0 = performance.now();
    const r = query(...args);
    const done = () => { const t = times.get(key) ?? { calls: 0, ms: 0 }; t.calls += 1; t.ms += performance.now() - t0; times.set(key, t); };
    r?.then?.(done, done);
    return r;
  };
});
const t0 = performance.now();
const cpu0 = process.cpuUsage();
for (const batchId of batches) await rating.rateBatch(batchId, { newer: NEWER });
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
console.log(`${BATCHES} batches in ${ms.toFixed(0)} ms: ${((BATCHES * 1000) / (ms / 1000)).toFixed(0)} events/s; node CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms`);
for (const [k, t] of [...times].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25)) console.log(`${t.ms.toFixed(0).padStart(7)} ms ${String(t.calls).padStart(5)}  ${(t.ms / t.calls).toFixed(2).padStart(7)}  ${k}`);
if (process.env.EXPLAIN) {
  await admin.query('BEGIN');
  const { rows } = await admin.query(`EXPLAIN (ANALYZE, BUFFERS) INSERT INTO usage_lines (line_key, kind, event_id, usage_id, window_index, window_start, window_end, organization_id, department_id,
    project_id, api_key_id, product, resource_type, resource_id, unit_id, unit_version, quantity, currency, price_book_id, price_book_version, unit_price, exact_units, period, occurred_at, usage_posting_id)
    SELECT line_key || ':x', kind, event_id, usage_id, window_index, window_start, window_end, organization_id, department_id,
    project_id, api_key_id, product, resource_type, resource_id, unit_id, unit_version, quantity, currency, price_book_id, price_book_version, unit_price, exact_units, period, occurred_at, usage_posting_id
    FROM usage_lines LIMIT 1000`);
  console.log(rows.map((r) => r['QUERY PLAN']).join('\n'));
  const r2 = await admin.query(`EXPLAIN (ANALYZE, BUFFERS) INSERT INTO usage_ratings (event_id, batch_id, organization_id, usage_posting_id) SELECT gen_random_uuid(), batch_id, organization_id, usage_posting_id FROM usage_ratings LIMIT 1000`);
  console.log(r2.rows.map((r) => r['QUERY PLAN']).join('\n'));
  await admin.query('ROLLBACK');
}
await database.close();
await ratingDb.close();
await db.drop();
process.exit(0);
