/**
 * Issue 17, the rating worker as its own process (`node
 * dist/workers/rating-process.js`, built by `npm run build`): killed with
 * SIGKILL in the middle of a batch, with the batch's rating transaction
 * open, it leaves nothing half done, and a restarted worker takes the job up
 * again and rates the rest exactly; two worker processes rating the same
 * organization's batches at the same time rate each event once and post
 * exactly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { deleteRedisKeys, TEST_REDIS_URL, uniqueEventSubjectPrefix } from '@aifactory/testing';
import { BullRatingQueue } from '../src/workers/rating-queue.js';
import { startBillingFixture, type BillingFixture } from './billing-fixture.js';
import { eventually, insertBatch, pointEvent, ratedState, ratedTotals, snapshotPrice, type AcceptedUsage, type UsageScope } from './rating-fixture.js';

const RATING_PROCESS = fileURLToPath(new URL('../dist/workers/rating-process.js', import.meta.url));
const prefix = `aiftest${randomBytes(5).toString('hex')}`;
const subjectPrefix = uniqueEventSubjectPrefix();

interface RatingProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

let fx: BillingFixture;
let queue: BullRatingQueue;
const running = new Set<RatingProcess>();

/** Starts the built rating process on this test's database and queue prefix, and waits until its worker takes jobs. */
async function startRatingProcess(): Promise<RatingProcess> {
  const child = spawn(process.execPath, [RATING_PROCESS], {
    env: {
      ...process.env,
      NODE_OPTIONS: '',
      DATABASE_URL: fx.db.appUrl('billing'),
      DB_POOL_SIZE: '3',
      REDIS_URL: TEST_REDIS_URL,
      BILLING_QUEUE_PREFIX: prefix,
      BILLING_RATING_CONCURRENCY: '2',
      // A job whose worker died is taken up again after about a second.
      BILLING_RATING_LOCK_MS: '1000',
      EVENT_SUBJECT_PREFIX: subjectPrefix,
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const started: RatingProcess = { child, output: () => output, exited };
  running.add(started);
  void exited.then(() => running.delete(started));
  await eventually('the rating process to take jobs', async () => {
    if (output.includes('rating worker started')) return true;
    if (child.exitCode !== null) throw new Error(`the rating process exited with ${child.exitCode}: ${output}`);
    return undefined;
  });
  return started;
}

/** Backends of this test's database waiting for a lock, with what they run. */
async function lockWaiters(like: string): Promise<number[]> {
  const { rows } = await fx.admin.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity
     WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid() AND query LIKE $1`,
    [like],
  );
  return rows.map((row) => row.pid);
}

/** An admin connection of its own, in a transaction the test ends. */
async function openTransaction(): Promise<pg.Client> {
  const client = await fx.db.admin();
  await client.query('SET search_path TO billing');
  await client.query('BEGIN');
  return client;
}

async function batchRated(batchId: string): Promise<boolean> {
  const { rows } = await fx.admin.query('SELECT rated_at IS NOT NULL AS rated FROM usage_batches WHERE id = $1', [batchId]);
  return rows[0].rated;
}

async function expectExactlyRated(organizationId: string, events: readonly AcceptedUsage[]): Promise<void> {
  const { actual, expected } = await ratedTotals(fx.admin, organizationId, events);
  expect({ organizationId, ...actual }).toEqual({ organizationId, ...expected });
}

beforeAll(async () => {
  if (!existsSync(RATING_PROCESS)) throw new Error(`${RATING_PROCESS} is missing: build billing first (npm run build)`);
  fx = await startBillingFixture({ poolSize: 4 });
  queue = new BullRatingQueue({ redisUrl: TEST_REDIS_URL, prefix });
});

afterAll(async () => {
  for (const process of running) process.child.kill('SIGKILL');
  await Promise.all([...running].map((process) => process.exited));
  await queue?.close();
  await deleteRedisKeys(prefix);
  await fx?.close();
});

describe('the rating worker process', () => {
  it('killed with SIGKILL in the middle of a batch, is restarted and rates the batch exactly, nothing twice', async () => {
    const at = new Date('2026-05-05T10:15:00Z');
    const organizations: UsageScope[] = [];
    for (let i = 0; i < 5; i += 1) organizations.push(await fx.organization());
    organizations.sort((a, b) => a.organizationId.localeCompare(b.organizationId));
    const eventsOf = new Map(
      organizations.map((scope) => [scope.organizationId, Array.from({ length: 40 }, (_, i) => pointEvent(scope, snapshotPrice('0.37'), BigInt(1 + i * 7), at))]),
    );
    const { batchId } = await insertBatch(fx.admin, [...eventsOf.values()].flat());

    // The batch's rating transaction (all its organizations in one) will wait at the third organization's rollup row,
    // which an open transaction of the test holds (an uncommitted row with the same key): the worker is then mid-batch
    // and mid-transaction, its lines written but not committed.
    const victim = organizations[2]!;
    const blocker = await openTransaction();
    await blocker.query(
      `INSERT INTO usage_rollups (hour, organization_id, department_id, project_id, api_key_id, product, resource_type, resource_id, unit_id, unit_version,
         price_book_version, currency, lines, quantity, exact_units)
       VALUES (date_trunc('hour', $1::timestamptz), $2, $3, $4, $5, 'tokenfactory', 'model', 'llama', 'token_output', 1, 1, 'USD', 0, 0, 0)`,
      [at, victim.organizationId, victim.departmentId, victim.projectId, ''],
    );
    const first = await startRatingProcess();
    await queue.enqueue(batchId);
    const [waiting] = await eventually('the worker to wait inside the third organization’s transaction', async () => {
      const pids = await lockWaiters('%usage_rollups%');
      return pids.length > 0 ? pids : undefined;
    });
    // Mid-batch, seen in the database: nothing of it is committed, and the batch is not rated.
    for (const scope of organizations) expect((await ratedState(fx.admin, scope.organizationId)).ratings).toBe(0);
    expect(await batchRated(batchId)).toBe(false);

    first.child.kill('SIGKILL');
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    await blocker.query('ROLLBACK');
    // The killed worker's backend finds its client gone and rolls the open transaction back.
    await eventually('the killed worker’s connection to end', async () => {
      const { rows } = await fx.admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [waiting]);
      return rows.length === 0 ? true : undefined;
    });
    for (const scope of organizations.slice(2)) {
      const state = await ratedState(fx.admin, scope.organizationId);
      expect({ organization: scope.organizationId, ratings: state.ratings, lines: state.lines, steps: state.steps.length, funds: state.funds }).toEqual({
        organization: scope.organizationId,
        ratings: 0,
        lines: 0,
        steps: 0,
        funds: 0n,
      });
    }

    // A new worker takes the dead one's job up again once its lock lapses, and rates the rest.
    const second = await startRatingProcess();
    await eventually('the batch to be rated', async () => ((await batchRated(batchId)) ? true : undefined));
    for (const scope of organizations) await expectExactlyRated(scope.organizationId, eventsOf.get(scope.organizationId)!);
    expect(await queue.deadLetters()).toBe(0);

    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
  });

  it("rates one organization's batches exactly when two worker processes rate them at the same time", async () => {
    const scope = await fx.organization();
    const other = { ...scope, departmentId: randomUUID(), projectId: randomUUID() };
    const prices = ['0.3', '1.000000000001', '0.0625'].map((unitPrice) => snapshotPrice(unitPrice));
    const all: AcceptedUsage[] = [];
    const batches: string[] = [];
    for (let b = 0; b < 12; b += 1) {
      const events = Array.from({ length: 30 }, (_, i) =>
        pointEvent(i % 3 === 0 ? other : scope, prices[(b + i) % prices.length]!, BigInt(1 + ((b * 31 + i * 17) % 997)), new Date(Date.UTC(2026, 4, 1 + (b % 2) * 20, i % 24))),
      );
      all.push(...events);
      batches.push((await insertBatch(fx.admin, events)).batchId);
    }

    // Hold the organization's funds row: every job either process takes waits on it, so they race once it is let go.
    const blocker = await openTransaction();
    await blocker.query('SELECT 1 FROM organization_funds WHERE organization_id = $1 FOR UPDATE', [scope.organizationId]);
    const workers = [await startRatingProcess(), await startRatingProcess()];
    for (const batchId of batches) await queue.enqueue(batchId);
    // Four waiting is both processes at their concurrency of 2: rating of one organization in two processes at once.
    await eventually('both processes to wait on the organization', async () => ((await lockWaiters('%organization_funds%')).length >= 4 ? true : undefined));
    await blocker.query('ROLLBACK');

    await eventually('every batch to be rated', async () => {
      const { rows } = await fx.admin.query<{ unrated: number }>('SELECT count(*)::int AS unrated FROM usage_batches WHERE id = ANY($1::uuid[]) AND rated_at IS NULL', [batches]);
      return rows[0]!.unrated === 0 ? true : undefined;
    });
    await expectExactlyRated(scope.organizationId, all);
    expect(await queue.deadLetters()).toBe(0);

    for (const worker of workers) worker.child.kill('SIGTERM');
    expect(await Promise.all(workers.map((worker) => worker.exited))).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
  });
});
