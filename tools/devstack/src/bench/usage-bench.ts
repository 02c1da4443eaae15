import { randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  AccountDirectory,
  alertingLedger,
  AccountService,
  AccountStore,
  BalanceAlerts,
  BullRatingQueue,
  defaultUsagePolicy,
  Ledger,
  openBillingDatabase,
  startRatingWorker,
  startUsageIngestion,
  UsageRating,
  type BillingDatabase,
} from '@aifactory/billing/ledger-kit';
import { prefixSubject, streamDeclarations } from '@aifactory/contracts';
import { ensureStreams } from '@aifactory/events';
import { createLogger } from '@aifactory/logging';
import { ServiceMetrics } from '@aifactory/telemetry';
import { createTestDatabase, deleteEventStreams, deleteRedisKeys, TEST_NATS_URL, TEST_REDIS_URL, uniqueEventSubjectPrefix } from '@aifactory/testing';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type pg from 'pg';
import { inBenchWorkspace } from './bench-run.js';
import { ForkedWorker } from './forked-worker.js';
import { processCpuMs, processTable, processTreeCpuMs } from './process-cpu.js';
import { fmt, positiveInt } from './side-by-side.js';
import { dropWhenIdle, progress } from './teardown.js';

const USAGE =
  'usage: npm run bench -- usage [--events 100000 --publishers 4 --window 128 --organizations 20 --batch 1000 --rating-concurrency 2 --pool 10 --profile]\n';
const ACTOR = { type: 'service' as const, id: 'usage-bench' };
const CURRENCY = 'USD';
/** The goal: events/s from publish to posted, and the ingest lag's p99 in seconds. */
const GOAL_EVENTS_PER_SECOND = 10_000;
const GOAL_INGEST_P99_SECONDS = 30;
/** Pipeline progress is read this often; the end time is accurate to about this. */
const POLL_MS = 100;
/** With nothing ingested or rated for this long once publishing ended, the run gives up. */
const STALL_MS = 120_000;

/** What the bench tells its publisher process (usage-publishers-main.ts) over IPC. */
export interface UsagePublishPlan {
  natsUrl: string;
  events: number;
  /** NATS connections, each a product replica's relay. */
  publishers: number;
  /** Publishes awaiting their ack per connection. */
  window: number;
  scopes: { organizationId: string; departmentId: string; projectId: string }[];
  /** The price book billing prices with, so the publisher can compute the bill apart from billing. */
  prices: BenchPrice[];
}

export interface BenchPrice {
  unit: string;
  resourceType: string;
  resourceId: string;
  /** Minor units per unit, up to 12 decimals. */
  unitPrice: string;
}

export type UsagePublishCommand =
  | { kind: 'plan'; plan: UsagePublishPlan }
  /** Publish every event once onto `<subjectPrefix>.<type>`. */
  | { kind: 'publish'; label: string; subjectPrefix: string }
  | { kind: 'exit' };

/** One publishing of all events, timed in the publisher process (wall-clock ms, comparable across processes). */
export interface PublishRun {
  label: string;
  events: number;
  acked: number;
  /** Events given up after every try. */
  failed: number;
  retries: number;
  /** Acks JetStream answered as duplicates (a retry of a publish that had been stored). */
  duplicates: number;
  firstMs: number;
  lastMs: number;
  ackP50Ms: number;
  ackP99Ms: number;
  cpuMs: number;
}

export type UsagePublishReply =
  /** Built: per remainder chain `<organization>:<project>:<month>`, the whole minor units billing must post. */
  | { kind: 'ready'; chains: [string, string][]; payloadBytes: number; buildMs: number }
  | { kind: 'published'; run: PublishRun }
  | { kind: 'failed'; message: string };

/** Fractional minor-unit prices, one for a single model, so rating's remainder chains carry real remainders. */
const PRICES: readonly BenchPrice[] = [
  { unit: 'token_output', resourceType: '*', resourceId: '*', unitPrice: '0.000123456789' },
  { unit: 'token_output', resourceType: 'model', resourceId: 'large', unitPrice: '0.000987654321' },
  { unit: 'token_input', resourceType: '*', resourceId: '*', unitPrice: '0.000033333333' },
  { unit: 'request', resourceType: '*', resourceId: '*', unitPrice: '0.7' },
];

interface UsageBenchOptions {
  events: number;
  publishers: number;
  window: number;
  organizations: number;
  batch: number;
  ratingConcurrency: number;
  /** DB_POOL_SIZE of ingestion's pool and of rating's. */
  pool: number;
  /** Time every statement of ingestion's and rating's pools, and print where their database time went. */
  profile: boolean;
}

function parseOptions(args: string[]): UsageBenchOptions | undefined {
  const { values } = parseArgs({
    args,
    options: {
      events: { type: 'string', default: '100000' },
      publishers: { type: 'string', default: '4' },
      window: { type: 'string', default: '128' },
      organizations: { type: 'string', default: '20' },
      batch: { type: 'string', default: '1000' },
      'rating-concurrency': { type: 'string', default: '2' },
      pool: { type: 'string', default: '10' },
      profile: { type: 'boolean', default: false },
    },
  });
  const options = {
    events: positiveInt(values.events),
    publishers: positiveInt(values.publishers),
    window: positiveInt(values.window),
    organizations: positiveInt(values.organizations),
    batch: positiveInt(values.batch),
    ratingConcurrency: positiveInt(values['rating-concurrency']),
    pool: positiveInt(values.pool),
  };
  if (Object.values(options).some((value) => value === undefined)) {
    process.stderr.write(USAGE);
    return undefined;
  }
  return { ...(options as Omit<UsageBenchOptions, 'profile'>), profile: values.profile ?? false };
}

const wallMs = () => performance.timeOrigin + performance.now();

/**
 * `npm run bench -- usage`: usage to money (issue 17) under load. N Token
 * Factory usage events are published at full speed by a process of their
 * own (several NATS connections, a window of acks each) while billing's
 * ingestion consumer and a BullMQ rating worker run in this process, as the
 * billing server runs them; timed from the first publish until every event
 * is rated and posted to the ledger. Beside it, in the same run, the same
 * events published raw into a plain stream. Then the ingest and rating lags
 * from the rows' own timestamps, and the proof that nothing was lost or
 * billed twice: N accepted rows and, per remainder chain and in the ledger,
 * exactly the total the publisher computed apart from billing. A private
 * database, subject prefixes and Redis key prefix, all removed at the end.
 */
export async function runUsageBench(args: string[]): Promise<number> {
  const options = parseOptions(args);
  if (!options) return 2;
  const { events } = options;
  return inBenchWorkspace('usage', async (workDir, teardown) => {
    progress('usage: private database, stream and queue prefixes');
    const db = await createTestDatabase({ subgraphs: ['billing'] });
    teardown.add('drop the private database', () => dropWhenIdle(db));
    // Ingestion and rating each with a pool of their own (as when rating runs as its own process), so each one's database time shows apart.
    const database = openBillingDatabase({ DATABASE_URL: db.appUrl('billing'), DB_POOL_SIZE: options.pool });
    teardown.add("close ingestion's pool", () => database.close());
    const ratingDatabase = openBillingDatabase({ DATABASE_URL: db.appUrl('billing'), DB_POOL_SIZE: options.pool });
    teardown.add("close rating's pool", () => ratingDatabase.close());
    const statements = options.profile ? { ingestion: timeStatements(database.pool), rating: timeStatements(ratingDatabase.pool) } : undefined;
    const admin = await db.admin();
    teardown.add('close the admin connection', () => admin.end());
    await admin.query('SET search_path TO billing');

    const subjectPrefix = uniqueEventSubjectPrefix();
    const rawPrefix = uniqueEventSubjectPrefix();
    teardown.add('delete the usage streams', () => deleteEventStreams(subjectPrefix));
    teardown.add('delete the raw stream', () => deleteEventStreams(rawPrefix));
    const queuePrefix = `aifbench${randomBytes(5).toString('hex')}`;
    teardown.add('delete the rating queue keys', () => deleteRedisKeys(queuePrefix));
    const nc = await connect({ servers: TEST_NATS_URL, name: 'aif-bench-usage-billing' });
    teardown.add("close billing's NATS connection", () => nc.close());
    // The raw baseline's stream is the Token Factory stream's declaration under another prefix: same limits, no consumer.
    await ensureStreams(await jetstreamManager(nc), [tokenFactoryStream(subjectPrefix), tokenFactoryStream(rawPrefix)]);

    const scopes = await openOrganizations(database, admin, options.organizations);
    await insertPriceBook(admin);
    const fundsBefore = await fundsTotal(admin);

    progress(`usage: building ${events} events in the publisher process`);
    const publishers = startPublisherProcess(workDir);
    teardown.add('stop the publisher process', () => publishers.stop());
    publishers.send({
      kind: 'plan',
      plan: { natsUrl: TEST_NATS_URL, events, publishers: options.publishers, window: options.window, scopes, prices: [...PRICES] },
    });
    const ready = await publishers.next('ready', 600_000);
    const expectedChains = new Map(ready.chains.map(([chain, minor]) => [chain, BigInt(minor)]));

    progress(`usage: raw JetStream publishes of the same ${events} events`);
    const rawCpu = cpuMark(publishers.pid);
    publishers.send({ kind: 'publish', label: 'raw', subjectPrefix: rawPrefix });
    const raw = (await publishers.next('published', 600_000)).run;
    const rawUsage = cpuSince(rawCpu, (raw.lastMs - raw.firstMs) / 1000);
    // Its disk and memory are not the pipeline's to carry.
    await deleteEventStreams(rawPrefix);

    progress('usage: ingestion and rating running; publishing');
    const billingLog = createWriteStream(path.join(workDir, 'billing.log'));
    teardown.add('close the billing log', () => new Promise<void>((resolve) => billingLog.end(() => resolve())));
    const logger = createLogger({ service: 'bench-billing-usage', level: 'warn', destination: billingLog });
    const queue = new BullRatingQueue({ redisUrl: TEST_REDIS_URL, prefix: queuePrefix });
    teardown.add('close the rating queue', () => queue.close());
    const balanceAlerts = new BalanceAlerts({ subjectPrefix });
    const worker = startRatingWorker({
      rating: new UsageRating(ratingDatabase.pool, alertingLedger(ratingDatabase.pool, balanceAlerts), { balanceAlerts }),
      redisUrl: TEST_REDIS_URL,
      prefix: queuePrefix,
      concurrency: options.ratingConcurrency,
      lockDurationMs: 30_000,
      logger,
    });
    teardown.add('stop the rating worker', () => worker.stop());
    await worker.ready();
    const ingestion = await startUsageIngestion({
      nc,
      subjectPrefix,
      pool: database.pool,
      schema: database.schema,
      logger,
      metrics: new ServiceMetrics('bench-billing-usage'),
      policy: defaultUsagePolicy,
      rating: queue,
      batchSize: options.batch,
      scopeWaitMs: 300_000,
    });
    teardown.add('stop usage ingestion', () => ingestion.stop());

    statements?.ingestion.clear();
    statements?.rating.clear();
    const pipelineCpu = cpuMark(publishers.pid);
    publishers.send({ kind: 'publish', label: 'pipeline', subjectPrefix });
    const progressOf = await followPipeline(admin, publishers, events);
    const published = progressOf.published;
    const pipelineUsage = cpuSince(pipelineCpu, (progressOf.postedAt - published.firstMs) / 1000);

    progress('usage: lags and totals');
    const lags = await lagsOf(admin);
    const totals = await totalsOf(admin, fundsBefore);
    const result: UsageBenchResult = { options, payloadBytes: ready.payloadBytes, raw, rawUsage, published, progress: progressOf, pipelineUsage, lags, totals, expectedChains };
    process.stdout.write(usageTables(result));
    if (statements) process.stdout.write(statementTable('ingestion', statements.ingestion) + statementTable('rating', statements.rating) + (await tableScans(admin)));
    return zeroLoss(result) && raw.failed === 0 && published.failed === 0 ? 0 : 1;
  });
}

function tokenFactoryStream(subjectPrefix: string) {
  const family = prefixSubject('tokenfactory.>', subjectPrefix);
  const stream = streamDeclarations({ subjectPrefix }).find((declaration) => declaration.subjects.includes(family));
  if (!stream) throw new Error('no stream is declared for tokenfactory.>');
  return stream;
}

/**
 * Organizations with accounts and a paid balance that outlasts the run, each
 * with two projects in billing's hierarchy read model (which iam's events
 * fill in a running platform; the bench writes it directly).
 */
async function openOrganizations(database: BillingDatabase, admin: pg.Client, count: number): Promise<UsagePublishPlan['scopes']> {
  progress(`usage: ${count} organizations with a balance and two projects each`);
  const directory = new AccountDirectory(database.pool);
  const ledger = new Ledger(database.pool, directory);
  const accounts = new AccountService(new AccountStore(database.prisma, database.pool));
  const clearing = async () => (await directory.platformAccount('payment_clearing', CURRENCY)).id;
  const scopes: UsagePublishPlan['scopes'] = [];
  for (let i = 0; i < count; i += 1) {
    const organizationId = randomUUID();
    await accounts.openOrganizationAccounts({ organizationId, currency: CURRENCY });
    await ledger.post([
      {
        id: `bench-credit:${organizationId}`,
        kind: 'admin_credit',
        currency: CURRENCY,
        organizationId,
        transfers: [{ debitAccountId: await clearing(), creditAccountId: (await directory.organization(organizationId))!.customer_balance.id, amount: 1_000_000_000_000n, code: 'admin_credit' }],
        actor: ACTOR,
      },
    ]);
    await admin.query(`INSERT INTO organizations (id, slug, name, billing_currency, status, version) VALUES ($1, $2, 'bench', $3, 'active', 1)`, [
      organizationId,
      `bench-${organizationId.slice(0, 8)}`,
      CURRENCY,
    ]);
    for (let project = 0; project < 2; project += 1) {
      const scope = { organizationId, departmentId: randomUUID(), projectId: randomUUID() };
      await admin.query(`INSERT INTO departments (id, organization_id, name, status, version) VALUES ($1, $2, 'bench', 'active', 1)`, [scope.departmentId, organizationId]);
      await admin.query(`INSERT INTO projects (id, organization_id, department_id, name, status, version) VALUES ($1, $2, $3, 'bench', 'active', 1)`, [
        scope.projectId,
        organizationId,
        scope.departmentId,
      ]);
      scopes.push(scope);
    }
  }
  return scopes;
}

/** The price book in force since the epoch, written directly (the domain refuses a start in the past). */
async function insertPriceBook(admin: pg.Client): Promise<void> {
  const { rows } = await admin.query<{ id: string }>(
    `INSERT INTO price_books (version, currency, effective_from, description, actor)
     VALUES (1, $1, to_timestamp(0), 'usage bench prices', $2::jsonb) RETURNING id`,
    [CURRENCY, JSON.stringify(ACTOR)],
  );
  await admin.query(
    `INSERT INTO price_book_prices (price_book_id, unit_id, unit_version, resource_type, resource_id, unit_price)
     SELECT $1, u, 1, t, r, p FROM unnest($2::text[], $3::text[], $4::text[], $5::numeric[]) AS x(u, t, r, p)`,
    [rows[0]!.id, PRICES.map((p) => p.unit), PRICES.map((p) => p.resourceType), PRICES.map((p) => p.resourceId), PRICES.map((p) => p.unitPrice)],
  );
}

async function fundsTotal(admin: pg.Client): Promise<bigint> {
  const { rows } = await admin.query<{ funds: string }>('SELECT coalesce(sum(paid + promotional), 0)::text AS funds FROM organization_funds');
  return BigInt(rows[0]!.funds);
}

interface PipelineProgress {
  published: PublishRun;
  /** When every event was committed in usage_events (accepted), and when every batch was rated and posted. */
  ingestedAt: number;
  postedAt: number;
}

/**
 * Watches usage_batches (one row per ingestion transaction, a few hundred
 * in all, so the watching costs Postgres little) until every event is
 * accepted and every batch is rated; waits for the publisher's report too.
 */
async function followPipeline(admin: pg.Client, publishers: PublisherProcess, events: number): Promise<PipelineProgress> {
  let published: PublishRun | undefined;
  let failure: Error | undefined;
  void publishers.next('published', 1_800_000).then(
    (reply) => (published = reply.run),
    (error: Error) => (failure = error),
  );
  let ingestedAt: number | undefined;
  let last = { accepted: -1, rated: -1 };
  let changedAt = Date.now();
  let reportedAt = Date.now();
  for (;;) {
    if (failure) throw failure;
    const { rows } = await admin.query<{ accepted: number; rated: number }>(
      'SELECT coalesce(sum(accepted), 0)::int AS accepted, coalesce(sum(accepted) FILTER (WHERE rated_at IS NOT NULL), 0)::int AS rated FROM usage_batches',
    );
    const now = wallMs();
    const { accepted, rated } = rows[0]!;
    if (ingestedAt === undefined && accepted >= events) ingestedAt = now;
    if (rated >= events && published) return { published, ingestedAt: ingestedAt ?? now, postedAt: now };
    if (accepted !== last.accepted || rated !== last.rated) {
      last = { accepted, rated };
      changedAt = Date.now();
    } else if (published && Date.now() - changedAt > STALL_MS) {
      throw new Error(`the pipeline stalled at ${accepted} accepted and ${rated} rated of ${events} events (see billing.log)`);
    }
    if (Date.now() - reportedAt >= 5_000) {
      progress(`usage: ${accepted} accepted, ${rated} rated and posted of ${events}${published ? '' : ' (still publishing)'}`);
      reportedAt = Date.now();
    }
    await sleep(POLL_MS);
  }
}

interface Lag {
  p50: number;
  p99: number;
  max: number;
}

interface Lags {
  /** usage_events.received_at - published_at (JetStream's store time). */
  ingest: Lag;
  /** usage_ratings.rated_at - usage_events.received_at. */
  rating: Lag;
  /** usage_ratings.rated_at - published_at. */
  endToEnd: Lag;
}

async function lagsOf(admin: pg.Client): Promise<Lags> {
  const lag = (expression: string) =>
    `percentile_cont(0.5) WITHIN GROUP (ORDER BY ${expression}), percentile_cont(0.99) WITHIN GROUP (ORDER BY ${expression}), max(${expression})`;
  const ingest = 'extract(epoch FROM e.received_at - e.published_at)';
  const rating = 'extract(epoch FROM r.rated_at - e.received_at)';
  const endToEnd = 'extract(epoch FROM r.rated_at - e.published_at)';
  const { rows } = await admin.query<{ values: (number | string)[] }>({
    text: `SELECT ARRAY[${lag(ingest)}, ${lag(rating)}, ${lag(endToEnd)}]::float8[] AS values
           FROM usage_events e JOIN usage_ratings r ON r.event_id = e.event_id`,
  });
  const v = (rows[0]?.values ?? []).map(Number);
  const at = (offset: number): Lag => ({ p50: v[offset] ?? Number.NaN, p99: v[offset + 1] ?? Number.NaN, max: v[offset + 2] ?? Number.NaN });
  return { ingest: at(0), rating: at(3), endToEnd: at(6) };
}

interface Totals {
  accepted: number;
  rejected: number;
  conflicts: number;
  ratings: number;
  lines: number;
  batches: number;
  /** Per chain `<organization>:<project>:<month>`: what its steps posted in all. */
  chains: Map<string, bigint>;
  /** What usage postings credited to revenue. */
  revenue: bigint;
  /** What the organizations' paid and promotional balances lost. */
  spent: bigint;
}

async function totalsOf(admin: pg.Client, fundsBefore: bigint): Promise<Totals> {
  const counts = (
    await admin.query<{ accepted: number; rejected: number; conflicts: number; ratings: number; lines: number; batches: number }>(
      `SELECT (SELECT count(*) FROM usage_events WHERE status = 'accepted')::int AS accepted,
              (SELECT count(*) FROM usage_events WHERE status = 'rejected')::int AS rejected,
              (SELECT count(*) FROM usage_conflicts)::int AS conflicts,
              (SELECT count(*) FROM usage_ratings)::int AS ratings,
              (SELECT count(*) FROM usage_lines)::int AS lines,
              (SELECT count(*) FROM usage_batches)::int AS batches`,
    )
  ).rows[0]!;
  const chains = (
    await admin.query<{ chain: string; posted: string }>(
      `SELECT organization_id || ':' || project_id || ':' || period::text AS chain, sum(delta)::text AS posted FROM usage_postings GROUP BY 1`,
    )
  ).rows;
  const revenue = (
    await admin.query<{ revenue: string }>(
      `SELECT coalesce(sum(t.amount), 0)::text AS revenue
         FROM transfers t JOIN postings p ON p.id = t.posting_id JOIN accounts a ON a.id = t.credit_account_id
        WHERE p.kind = 'usage' AND a.kind = 'revenue'`,
    )
  ).rows[0]!;
  return {
    ...counts,
    chains: new Map(chains.map((row) => [row.chain, BigInt(row.posted)])),
    revenue: BigInt(revenue.revenue),
    spent: fundsBefore - (await fundsTotal(admin)),
  };
}

/** Server processes on this machine whose CPU the tables report, by command name: each the root of its process tree. */
const SERVERS = ['postgres', 'nats-server', 'redis-server'] as const;

function serverRoots(): Map<(typeof SERVERS)[number], number[]> {
  const processes = processTable();
  const roots = new Map<(typeof SERVERS)[number], number[]>(SERVERS.map((server) => [server, []]));
  for (const [pid, { name, parent }] of processes) {
    const server = SERVERS.find((candidate) => candidate === name);
    if (server && processes.get(parent)?.name !== name) roots.get(server)!.push(pid);
  }
  return roots;
}

interface CpuMark {
  bench: NodeJS.CpuUsage;
  publishers: number;
  publishersPid: number;
  servers: Map<string, { pids: number[]; ms: number }>;
}

interface CpuUsage {
  wallSeconds: number;
  /** CPU seconds per process (group). */
  seconds: Map<string, number>;
}

function treeMs(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      total += processTreeCpuMs(pid);
    } catch {
      // gone
    }
  }
  return total;
}

function cpuMark(publishersPid: number): CpuMark {
  const servers = new Map<string, { pids: number[]; ms: number }>();
  for (const [server, pids] of serverRoots()) if (pids.length > 0) servers.set(server, { pids, ms: treeMs(pids) });
  return { bench: process.cpuUsage(), publishers: processCpuMs(publishersPid), publishersPid, servers };
}

function cpuSince(mark: CpuMark, wallSeconds: number): CpuUsage {
  const bench = process.cpuUsage(mark.bench);
  const seconds = new Map<string, number>([
    ['bench process: billing ingestion + rating', (bench.user + bench.system) / 1e6],
    ['publishers (their own process)', (processCpuMs(mark.publishersPid) - mark.publishers) / 1000],
  ]);
  for (const [server, { pids, ms }] of mark.servers) seconds.set(server, (treeMs(pids) - ms) / 1000);
  return { wallSeconds, seconds };
}

type PublisherProcess = ForkedWorker<UsagePublishCommand, UsagePublishReply>;

function startPublisherProcess(workDir: string): PublisherProcess {
  return ForkedWorker.start('publisher', fileURLToPath(new URL('./usage-publishers-main.js', import.meta.url)), path.join(workDir, 'publishers.log'));
}

interface UsageBenchResult {
  options: UsageBenchOptions;
  payloadBytes: number;
  raw: PublishRun;
  rawUsage: CpuUsage;
  published: PublishRun;
  progress: PipelineProgress;
  pipelineUsage: CpuUsage;
  lags: Lags;
  totals: Totals;
  expectedChains: Map<string, bigint>;
}

const sum = (values: Iterable<bigint>) => [...values].reduce((total, value) => total + value, 0n);

function chainsMatch(result: UsageBenchResult): boolean {
  const { chains } = result.totals;
  const { expectedChains } = result;
  return chains.size === expectedChains.size && [...expectedChains].every(([chain, minor]) => chains.get(chain) === minor);
}

function zeroLoss(result: UsageBenchResult): boolean {
  const { totals, options, expectedChains } = result;
  const expected = sum(expectedChains.values());
  return (
    totals.accepted === options.events &&
    totals.rejected === 0 &&
    totals.conflicts === 0 &&
    totals.ratings === options.events &&
    totals.lines === options.events &&
    chainsMatch(result) &&
    totals.revenue === expected &&
    totals.spent === expected
  );
}

function usageTables(result: UsageBenchResult): string {
  const { options, raw, published, progress: at, lags, totals, expectedChains } = result;
  const n = options.events;
  const rawSeconds = (raw.lastMs - raw.firstMs) / 1000;
  const rawRate = n / rawSeconds;
  const rows: [string, number][] = [
    ['raw JetStream publish, acked, into a plain stream (no consumer)', rawSeconds],
    ['pipeline: published, acked (while billing consumed)', (published.lastMs - published.firstMs) / 1000],
    ['pipeline: ingested (every event committed in usage_events)', (at.ingestedAt - published.firstMs) / 1000],
    ['pipeline: rated and posted to the ledger (every batch rated)', (at.postedAt - published.firstMs) / 1000],
  ];
  const postedRate = n / rows[3]![1];
  let out =
    `\n## Usage to money: JetStream publish to posted ledger (${n} Token Factory usage events of ~${result.payloadBytes} bytes, ` +
    `${options.publishers} publishers x ${options.window} acks in flight, ${options.organizations} organizations x 2 projects, ` +
    `ingestion batches of up to ${options.batch}, rating concurrency ${options.ratingConcurrency}, pool ${options.pool})\n\n` +
    '| path (each timed from its first publish) | events | seconds | events/s | / raw publish |\n|---|---|---|---|---|\n';
  for (const [label, seconds] of rows) out += `| ${label} | ${n} | ${fmt(seconds)} | ${fmt(n / seconds, 0)} | ${fmt(n / seconds / rawRate, 2)}x |\n`;
  out +=
    `\nPublish acks: raw p50 ${fmt(raw.ackP50Ms)} ms, p99 ${fmt(raw.ackP99Ms)} ms; during the pipeline p50 ${fmt(published.ackP50Ms)} ms, ` +
    `p99 ${fmt(published.ackP99Ms)} ms; retried ${raw.retries + published.retries}, failed ${raw.failed + published.failed}.\n` +
    '\n## Lags at that load (from the rows: JetStream\'s store time, then the start of the ingestion and of the rating transaction)\n\n' +
    '| lag | p50 s | p99 s | max s |\n|---|---|---|---|\n' +
    `| ingest: usage_events.received_at - published_at | ${fmt(lags.ingest.p50, 3)} | ${fmt(lags.ingest.p99, 3)} | ${fmt(lags.ingest.max, 3)} |\n` +
    `| rating: usage_ratings.rated_at - received_at | ${fmt(lags.rating.p50, 3)} | ${fmt(lags.rating.p99, 3)} | ${fmt(lags.rating.max, 3)} |\n` +
    `| end to end: rated_at - published_at | ${fmt(lags.endToEnd.p50, 3)} | ${fmt(lags.endToEnd.p99, 3)} | ${fmt(lags.endToEnd.max, 3)} |\n`;
  const expected = sum(expectedChains.values());
  const check = (ok: boolean) => (ok ? 'yes' : '**NO**');
  out +=
    '\n## Nothing lost, nothing twice (expected: computed by the publisher apart from billing)\n\n' +
    '| check | expected | billing | ok |\n|---|---|---|---|\n' +
    `| accepted usage_events rows | ${n} | ${totals.accepted} (rejected ${totals.rejected}, conflicts ${totals.conflicts}) | ${check(totals.accepted === n && totals.rejected === 0 && totals.conflicts === 0)} |\n` +
    `| rated events / usage lines | ${n} / ${n} | ${totals.ratings} / ${totals.lines} (${totals.batches} batches) | ${check(totals.ratings === n && totals.lines === n)} |\n` +
    `| remainder chains, floor(exact) each | ${expectedChains.size} chains, ${expected} minor units | ${totals.chains.size} chains, ${sum(totals.chains.values())} | ${check(chainsMatch(result))} |\n` +
    `| usage revenue in the ledger (minor units) | ${expected} | ${totals.revenue} | ${check(totals.revenue === expected)} |\n` +
    `| organizations' funds spent (minor units) | ${expected} | ${totals.spent} | ${check(totals.spent === expected)} |\n`;
  out += cpuTable('raw publish', result.rawUsage) + cpuTable('pipeline (first publish to every event posted)', result.pipelineUsage);
  const met = postedRate >= GOAL_EVENTS_PER_SECOND && lags.ingest.p99 < GOAL_INGEST_P99_SECONDS;
  out +=
    `\nGoal (issue 17): >= ${GOAL_EVENTS_PER_SECOND} events/s publish to posted with ingest lag p99 < ${GOAL_INGEST_P99_SECONDS} s: ` +
    `${fmt(postedRate, 0)} events/s, ingest p99 ${fmt(lags.ingest.p99, 2)} s: ${met ? 'met' : 'NOT met'} on this machine.\n`;
  return out;
}

function cpuTable(label: string, usage: CpuUsage): string {
  let out = `\n## CPU during the ${label}: ${fmt(usage.wallSeconds)} s wall\n\n| process | CPU s | cores busy (CPU s / wall s) |\n|---|---|---|\n`;
  for (const [process, seconds] of usage.seconds) out += `| ${process} | ${fmt(seconds)} | ${fmt(seconds / usage.wallSeconds)} |\n`;
  return out;
}

interface StatementTime {
  calls: number;
  ms: number;
}

/**
 * Times every statement run on the pool's connections from now on, by its
 * prepared name or, unnamed, its first words: wall time from the client's
 * view (waiting for locks and the commit's WAL flush included).
 */
function timeStatements(pool: pg.Pool): Map<string, StatementTime> {
  const times = new Map<string, StatementTime>();
  const record = (key: string, ms: number) => {
    const time = times.get(key);
    if (time) {
      time.calls += 1;
      time.ms += ms;
    } else times.set(key, { calls: 1, ms });
  };
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const first = args[0] as string | { name?: string; text?: string } | undefined;
      const key = typeof first === 'string' ? first : (first?.name ?? first?.text ?? '?');
      const label = key.replace(/\s+/g, ' ').trim().slice(0, 60);
      const t0 = performance.now();
      const done = () => record(label, performance.now() - t0);
      const last = args.length - 1;
      const callback = args[last];
      if (typeof callback === 'function') {
        args[last] = (...results: unknown[]) => {
          done();
          (callback as (...results: unknown[]) => void)(...results);
        };
        return query(...args);
      }
      const result = query(...args) as Promise<unknown> | undefined;
      result?.then(done, done);
      return result;
    };
  });
  return times;
}

function statementTable(component: string, times: Map<string, StatementTime>): string {
  const rows = [...times].sort((a, b) => b[1].ms - a[1].ms);
  const total = rows.reduce((sum, [, time]) => sum + time.ms, 0);
  let out = `\n## Statements of ${component}'s pool during the pipeline run: ${fmt(total / 1000)} s in all\n\n| statement | calls | total s | share | mean ms |\n|---|---|---|---|---|\n`;
  for (const [statement, time] of rows.slice(0, 20)) {
    out += `| ${statement.replace(/\|/g, '\\|')} | ${time.calls} | ${fmt(time.ms / 1000)} | ${fmt((100 * time.ms) / total, 1)}% | ${fmt(time.ms / time.calls)} |\n`;
  }
  return out;
}

/** Which tables were read by sequential scans, and how many rows those read: a missing or unused index shows here. */
async function tableScans(admin: pg.Client): Promise<string> {
  const { rows } = await admin.query<{ relname: string; seq_scan: string; seq_tup_read: string; idx_scan: string | null; n_live_tup: string }>(
    `SELECT relname, seq_scan::text, seq_tup_read::text, idx_scan::text, n_live_tup::text FROM pg_stat_user_tables
      WHERE schemaname = 'billing' AND seq_tup_read > 0 ORDER BY seq_tup_read DESC LIMIT 12`,
  );
  let out = '\n## Sequential scans by table over the whole run (pg_stat_user_tables)\n\n| table | seq scans | rows read by them | index scans | live rows |\n|---|---|---|---|---|\n';
  for (const row of rows) out += `| ${row.relname} | ${row.seq_scan} | ${row.seq_tup_read} | ${row.idx_scan ?? '-'} | ${row.n_live_tup} |\n`;
  return out;
}
