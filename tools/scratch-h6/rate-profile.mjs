// Scratch (H6): times UsageRating.rateBatch alone on pre-ingested batches. Deleted before the report.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { AccountDirectory, AccountService, AccountStore, BalanceAlerts, Ledger, openBillingDatabase, UsageRating } from '@aifactory/billing/ledger-kit';
import { createTestDatabase } from '@aifactory/testing';
import { readdirSync, readFileSync } from 'node:fs';
function pgCpuMs() {
  let total = 0;
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (name !== 'postgres') continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(f[11]) + Number(f[12])) * 10;
    } catch {}
  }
  return total;
}

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
const pg0 = pgCpuMs();
for (const batchId of batches) await rating.rateBatch(batchId, { newer: NEWER });
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const pgMs = pgCpuMs() - pg0;
console.log(`${BATCHES} batches in ${ms.toFixed(0)} ms: ${((BATCHES * 1000) / (ms / 1000)).toFixed(0)} events/s; node CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms, postgres CPU ${pgMs} ms`);
for (const [k, t] of [...times].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25)) console.log(`${t.ms.toFixed(0).padStart(7)} ms ${String(t.calls).padStart(5)}  ${(t.ms / t.calls).toFixed(2).padStart(7)}  ${k}`);
if (process.env.EXPLAIN) {
  await admin.query('BEGIN');
  const ids = (await admin.query('SELECT event_id, usage_posting_id, period::text, exact_units::text FROM usage_lines ORDER BY id DESC LIMIT 3000')).rows;
  await admin.query('DELETE FROM usage_ratings'); 
  const { rows } = await admin.query(`EXPLAIN (ANALYZE, BUFFERS) SELECT 'event:x' || e.event_id, 'point', e.event_id, e.usage_id, e.organization_id, e.department_id, e.project_id, e.api_key_id, e.product,
         COALESCE(e.resource_type, '*'), COALESCE(e.resource_id, '*'), e.unit_id, e.unit_version, e.quantity, e.currency,
         e.price_book_id, e.price_book_version, e.unit_price, p.exact_units, p.period, e.occurred_at, p.usage_posting_id
       FROM unnest($1::uuid[], $2::numeric[], $3::date[], $4::text[]) WITH ORDINALITY AS p(event_id, exact_units, period, usage_posting_id, ordinal)
       JOIN usage_events e ON e.event_id = p.event_id
       ORDER BY p.ordinal`, [ids.map((r) => r.event_id), ids.map((r) => r.exact_units), ids.map((r) => r.period), ids.map((r) => r.usage_posting_id)]);
  console.log(rows.map((r) => r['QUERY PLAN']).join('\n'));
  await admin.query('ROLLBACK');
}
await database.close();
await ratingDb.close();
await db.drop();
process.exit(0);
