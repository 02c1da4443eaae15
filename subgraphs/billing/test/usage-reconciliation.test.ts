/**
 * Issue 17, reconciliation and compaction: per window what the product
 * reported beside what billing ingested, rated and posted; drift (a summary
 * counting more, an event left unrated, a missing step) is stored with its
 * reasons, degrades billing while it lasts and is closed by
 * `billing:reconcile`; a month's raw usage is deleted only once its audit
 * review is recorded, every dispute window has passed, all of it is rated
 * and every window is clean.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ManualClock } from '@aifactory/clock';
import { statusSubject } from '@aifactory/contracts';
import { createLogger } from '@aifactory/logging';
import { ServiceMetrics } from '@aifactory/telemetry';
import { uniqueEventSubjectPrefix } from '@aifactory/testing';
import { UsageCompactionStore } from '../src/data/usage-compaction-store.js';
import { UsageReconciliationStore } from '../src/data/usage-reconciliation-store.js';
import { inTransaction } from '../src/data/transactions.js';
import { lateLimitMs, monthArgument, UsageCompaction } from '../src/domain/usage-compaction.js';
import { UsageDriftStatus } from '../src/domain/usage-drift-status.js';
import { UsageReconciliation } from '../src/domain/usage-reconciliation.js';
import { startUsageReconciliation } from '../src/workers/usage-reconciliation.js';
import { billingAccess, orgAdmin, platformAdmin, policySource } from './billing-access.js';
import { codeOf, startBillingFixture, type BillingFixture } from './billing-fixture.js';
import { insertPriceBook, usageOrganization, waitFor } from './usage-fixture.js';
import {
  hoursAfter,
  insertBatch,
  insertChainStep,
  insertConflict,
  insertRatedEvent,
  insertRating,
  insertSummary,
  insertUsageEvent,
  type UsageScopeIds,
} from './usage-rows.js';

// `npm run billing:reconcile` runs the built CLI: npm test builds before it tests.
const RECONCILE_CLI = fileURLToPath(new URL('../dist/cli/reconcile.js', import.meta.url));
const GRACE_MS = 5 * 60_000;
const actor = { type: 'system' as const, id: 'usage-reconciliation-test' };
const STATUS_EVENT = statusSubject('billing');

const scopeOf = (): UsageScopeIds => ({ organizationId: randomUUID(), departmentId: randomUUID(), projectId: randomUUID() });

interface Harness {
  fx: BillingFixture;
  subjectPrefix: string;
  reconciliation(clock?: ManualClock): UsageReconciliation;
}

async function startHarness(): Promise<Harness> {
  const fx = await startBillingFixture();
  const subjectPrefix = uniqueEventSubjectPrefix();
  const store = new UsageReconciliationStore(fx.database.pool);
  const status = new UsageDriftStatus(fx.database.pool, store, { subjectPrefix });
  return {
    fx,
    subjectPrefix,
    reconciliation: (clock) => new UsageReconciliation(store, status, { graceMs: GRACE_MS, ...(clock ? { clock } : {}) }),
  };
}

/** The stored verdict of each window of the organization, by window start. */
async function windowsOf(fx: BillingFixture, organizationId: string) {
  const { rows } = await fx.admin.query<{
    product: string;
    unit_id: string;
    window_start: Date;
    window_end: Date;
    reported_count: number | null;
    ingested_count: number;
    ingested_quantity: string;
    rated_count: number;
    posted_count: number;
    drift: boolean;
    drift_reasons: string[];
    checked_at: Date;
  }>(
    `SELECT product, unit_id, window_start, window_end, reported_count, ingested_count, ingested_quantity::text, rated_count, posted_count, drift,
            drift_reasons, checked_at
     FROM usage_reconciliations WHERE organization_id = $1 ORDER BY window_start, unit_id`,
    [organizationId],
  );
  return rows;
}

describe('usage reconciliation windows', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  }, 60_000);

  afterAll(async () => {
    await h?.fx.close();
  });

  it('judges a window clean when the summary, ingestion, ratings and steps agree, and counts an opening rated without a step', async () => {
    const scope = scopeOf();
    const start = new Date('2025-02-03T10:00:00.000Z');
    await insertSummary(h.fx.admin, { organizationId: scope.organizationId, windowStart: start, windowEnd: hoursAfter(start, 1), eventCount: 2, quantity: 5n });
    await insertRatedEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, 0.25), quantity: 2n });
    await insertRatedEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, 0.75), quantity: 3n });
    // Outside the window: its own (next) hour.
    await insertRatedEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, 1), quantity: 7n });
    const opening = await insertUsageEvent(h.fx.admin, scope, { product: 'gpuaas', unit: 'gpu_hour', kind: 'opened', occurredAt: hoursAfter(start, 0.5), basePerUnit: 3600 });
    await insertRating(h.fx.admin, opening, null);

    const round = await h.reconciliation().reconcileSpan(start, hoursAfter(start, 2), actor);

    expect(round.newlyDrifting).toBe(0);
    const windows = await windowsOf(h.fx, scope.organizationId);
    expect(windows.map((w) => [w.product, w.unit_id, w.window_start.toISOString(), w.reported_count, w.ingested_count, w.ingested_quantity, w.rated_count, w.posted_count, w.drift])).toEqual([
      ['gpuaas', 'gpu_hour', start.toISOString(), null, 1, '1', 1, 1, false],
      ['tokenfactory', 'token_output', start.toISOString(), 2, 2, '5', 2, 2, false],
      ['tokenfactory', 'token_output', hoursAfter(start, 1).toISOString(), null, 1, '7', 1, 1, false],
    ]);
  });

  it('drifts reported_ne_ingested when the product counted more than billing ingested', async () => {
    const scope = scopeOf();
    const start = new Date('2025-02-04T10:00:00.000Z');
    // A 15-minute summary window: the product's own windows need not be hours.
    await insertSummary(h.fx.admin, { organizationId: scope.organizationId, windowStart: start, windowEnd: hoursAfter(start, 0.25), eventCount: 3, quantity: 6n });
    await insertRatedEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, 0.1), quantity: 2n });
    await insertRatedEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, 0.2), quantity: 2n });

    const round = await h.reconciliation().reconcileSpan(start, hoursAfter(start, 1), actor);

    expect(round.newlyDrifting).toBe(1);
    expect(await windowsOf(h.fx, scope.organizationId)).toEqual([
      expect.objectContaining({ window_end: hoursAfter(start, 0.25), reported_count: 3, ingested_count: 2, ingested_quantity: '4', drift: true, drift_reasons: ['reported_ne_ingested'] }),
    ]);
  });

  it('drifts unrated for accepted usage left without a rating, in the hour no summary covers; rejected usage is not counted', async () => {
    const scope = scopeOf();
    const start = new Date('2025-02-05T10:00:00.000Z');
    await insertRatedEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, 0.1) });
    await insertUsageEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, 0.2), quantity: 4n });
    await insertUsageEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, 0.3), rejectionReason: 'unknown_unit' });

    await h.reconciliation().reconcileSpan(start, hoursAfter(start, 1), actor);

    expect(await windowsOf(h.fx, scope.organizationId)).toEqual([
      expect.objectContaining({ reported_count: null, ingested_count: 2, ingested_quantity: '5', rated_count: 1, posted_count: 1, drift: true, drift_reasons: ['unrated'] }),
    ]);
  });

  it('drifts rated_ne_posted when a rating names a step that does not exist', async () => {
    const scope = scopeOf();
    const start = new Date('2025-02-06T10:00:00.000Z');
    const event = await insertUsageEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, 0.5) });
    await insertRating(h.fx.admin, event, `usage:${scope.organizationId}:${scope.projectId}:2025-02-01:99`);

    await h.reconciliation().reconcileSpan(start, hoursAfter(start, 1), actor);

    expect(await windowsOf(h.fx, scope.organizationId)).toEqual([
      expect.objectContaining({ ingested_count: 1, rated_count: 1, posted_count: 0, drift: true, drift_reasons: ['rated_ne_posted'] }),
    ]);
  });

  it('judges a window only once it ended more than the grace period ago', async () => {
    const scope = scopeOf();
    const start = new Date('2025-02-07T10:00:00.000Z');
    await insertUsageEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, 0.5) });
    const clock = new ManualClock(hoursAfter(start, 1 + 4 / 60));
    const reconciliation = h.reconciliation(clock);

    const early = await reconciliation.reconcileSpan(start, hoursAfter(start, 1), actor);
    clock.advance(60_000);
    const judged = await reconciliation.reconcileSpan(start, hoursAfter(start, 1), actor);

    expect(early.windows).toEqual([]);
    expect(judged.windows.map((w) => w.driftReasons)).toEqual([['unrated']]);
  });

  it('counts, each round, the windows late usage landed in, the hours that ended since, and the drifting ones, and nothing else', async () => {
    const scope = scopeOf();
    const old = new Date('2025-02-08T10:00:00.000Z');
    const clock = new ManualClock(new Date('2025-02-09T12:00:00.000Z'));
    const reconciliation = h.reconciliation(clock);
    // An old window judged clean, and an hour that ends at 12:00 (judged at 12:05).
    await insertRatedEvent(h.fx.admin, scope, { occurredAt: hoursAfter(old, 0.5), receivedAt: hoursAfter(old, 0.5) });
    await insertRatedEvent(h.fx.admin, scope, { occurredAt: new Date('2025-02-09T11:30:00.000Z'), receivedAt: new Date('2025-02-09T11:30:00.000Z') });
    await reconciliation.reconcileSpan(old, hoursAfter(old, 1), actor);
    const clean = (await windowsOf(h.fx, scope.organizationId))[0]!;

    // 12:06: the 11:00 hour became judgeable since the last round (at 12:00); nothing else changed.
    clock.set(new Date('2025-02-09T12:06:00.000Z'));
    const crossed = await reconciliation.reconcileChanges(new Date('2025-02-09T12:00:00.000Z'), actor);
    expect(crossed.windows.filter((w) => w.organizationId === scope.organizationId).map((w) => w.windowStart.toISOString())).toEqual([
      '2025-02-09T11:00:00.000Z',
    ]);

    // Late usage for the old window arrives (unrated); the next round counts that window again and finds it drifting.
    const batchId = await insertBatch(h.fx.admin, new Date('2025-02-09T12:07:00.000Z'));
    const late = await insertUsageEvent(h.fx.admin, scope, { occurredAt: hoursAfter(old, 0.6), batchId });
    clock.set(new Date('2025-02-09T12:08:00.000Z'));
    const lateRound = await reconciliation.reconcileChanges(new Date('2025-02-09T12:06:00.000Z'), actor);
    expect(lateRound.windows.filter((w) => w.organizationId === scope.organizationId).map((w) => [w.windowStart.toISOString(), w.driftReasons])).toEqual([
      [old.toISOString(), ['unrated']],
    ]);
    expect(lateRound.newlyDrifting).toBeGreaterThanOrEqual(1);

    // Rated meanwhile: a drifting window is counted every round, so the next one clears it.
    await insertRating(h.fx.admin, late, await insertChainStep(h.fx.admin, scope));
    clock.set(new Date('2025-02-09T12:09:00.000Z'));
    const cleared = await reconciliation.reconcileChanges(new Date('2025-02-09T12:08:00.000Z'), actor);
    const mine = cleared.windows.filter((w) => w.organizationId === scope.organizationId);
    expect(mine.map((w) => [w.windowStart.toISOString(), w.drift, w.driftedBefore])).toEqual([[old.toISOString(), false, true]]);
    expect((await windowsOf(h.fx, scope.organizationId))[0]!.checked_at.getTime()).toBeGreaterThan(clean.checked_at.getTime());
  });

  it('billing:reconcile rates the unrated usage of its span and exits 0 once no window drifts, 1 while one does', async () => {
    const scope = await usageOrganization(h.fx, { currency: 'USD', paid: 100_000n });
    const book = await insertPriceBook(h.fx.admin, { currency: 'USD', prices: [{ unit: 'token_output', unitPrice: '0.5' }] });
    const start = new Date('2025-02-10T10:00:00.000Z');
    const to = hoursAfter(start, 1).toISOString();
    const batchId = await insertBatch(h.fx.admin);
    for (const offset of [0.1, 0.2, 0.3]) {
      await insertUsageEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, offset), quantity: 3n, batchId, priceBookId: book.id, unitPrice: '0.5' });
    }
    await insertSummary(h.fx.admin, { organizationId: scope.organizationId, windowStart: start, windowEnd: hoursAfter(start, 1), eventCount: 3, quantity: 9n });
    const before = await h.reconciliation().reconcileSpan(start, hoursAfter(start, 1), actor);
    expect(before.windows.map((w) => w.driftReasons)).toEqual([['unrated']]);

    const repaired = await reconcileCli(h, ['--from', start.toISOString(), '--to', to]);

    expect(repaired.exitCode).toBe(0);
    expect(repaired.stdout).toContain('rated 3 unrated usage events');
    expect(repaired.stdout).toContain('1 clean, 0 drifting');
    expect(await windowsOf(h.fx, scope.organizationId)).toEqual([expect.objectContaining({ ingested_count: 3, rated_count: 3, posted_count: 3, drift: false })]);
    const { rows } = await h.fx.admin.query<{ lines: number; amount: string }>(
      'SELECT count(*)::int AS lines, sum(exact_units)::text AS amount FROM usage_lines WHERE organization_id = $1',
      [scope.organizationId],
    );
    // 9 tokens at 0.5 minor units: 4.5 minor units, exactly (in exact units of 1 / (10^12 * 3600)).
    expect(rows[0]).toEqual({ lines: 3, amount: (45n * 10n ** 11n * 3600n).toString() });

    // A recount that says 4 events: no rating can close that, and the CLI names it.
    await h.fx.admin.query('UPDATE usage_window_summaries SET event_count = 4, recount = 2 WHERE organization_id = $1', [scope.organizationId]);
    const drifting = await reconcileCli(h, ['--from', start.toISOString(), '--to', to]);
    expect(drifting.exitCode).toBe(1);
    expect(drifting.stdout).toContain('0 clean, 1 drifting');
    expect(drifting.stdout).toMatch(new RegExp(`tokenfactory\\s+${scope.organizationId}\\s+token_output\\s+${start.toISOString()}.*4/9\\s+3/9\\s+3\\s+3\\s+reported_ne_ingested`));

    const refused = await reconcileCli(h, ['--from', to, '--to', start.toISOString()]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('usage: npm run billing:reconcile');
  });
});

async function reconcileCli(h: Harness, args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const env = { ...process.env, NODE_OPTIONS: '', DATABASE_URL: h.fx.db.appUrl('billing'), LOG_LEVEL: 'silent', EVENT_SUBJECT_PREFIX: h.subjectPrefix };
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [RECONCILE_CLI, ...args], { env });
    return { exitCode: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { exitCode: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('billing status while usage drifts', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await startHarness();
  }, 60_000);

  afterAll(async () => {
    await h?.fx.close();
  });

  const statusEvents = async () =>
    (
      await h.fx.admin.query<{ aggregate_version: number; payload: { status: string; reason: string | null } }>(
        'SELECT aggregate_version, payload FROM outbox_events WHERE type = $1 ORDER BY aggregate_version',
        [STATUS_EVENT],
      )
    ).rows;

  it('degrades billing with one status event while a window drifts, and returns it to operational once the window is clean', async () => {
    const scope = scopeOf();
    const start = new Date('2025-03-03T10:00:00.000Z');
    const event = await insertUsageEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, 0.5) });
    const reconciliation = h.reconciliation();

    const drifting = await reconciliation.reconcileSpan(start, hoursAfter(start, 1), actor);
    const again = await reconciliation.reconcileSpan(start, hoursAfter(start, 1), actor);
    await insertRating(h.fx.admin, event, await insertChainStep(h.fx.admin, scope));
    const cleared = await reconciliation.reconcileSpan(start, hoursAfter(start, 1), actor);

    expect(drifting.status).toMatchObject({ status: 'degraded', reason: expect.stringMatching(/^Usage reconciliation: 1 usage window where/) });
    expect(again.status.version).toBe(drifting.status.version);
    expect(cleared.status).toMatchObject({ status: 'operational', reason: null });
    expect((await statusEvents()).map((e) => [e.aggregate_version, e.payload.status])).toEqual([
      [1, 'degraded'],
      [2, 'operational'],
    ]);
  });

  it('leaves a degradation the ledger check set standing, and degrades billing itself once that is lifted', async () => {
    const scope = scopeOf();
    const start = new Date('2025-03-04T10:00:00.000Z');
    await insertUsageEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, 0.5) });
    const ledgerReason = 'Ledger check: 1 mismatch between the balance read model and the ledger; run billing:verify';
    await h.fx.admin.query(`UPDATE service_status SET status = 'degraded', reason = $1, version = version + 1 WHERE service = 'billing'`, [ledgerReason]);

    const underLedger = await h.reconciliation().reconcileSpan(start, hoursAfter(start, 1), actor);
    await h.fx.admin.query(`UPDATE service_status SET status = 'operational', reason = NULL, version = version + 1 WHERE service = 'billing'`);
    const afterLedger = await h.reconciliation().reconcileSpan(start, hoursAfter(start, 1), actor);

    expect(underLedger.status).toMatchObject({ status: 'degraded', reason: ledgerReason });
    expect(afterLedger.status).toMatchObject({ status: 'degraded', reason: expect.stringMatching(/^Usage reconciliation:/) });
  });

  it('runs rounds in the background and exports the drifting windows as a gauge', async () => {
    const metrics = new ServiceMetrics('billing-test');
    const startedAt = new Date();
    const worker = startUsageReconciliation({
      reconciliation: h.reconciliation(),
      everyMs: 60_000,
      logger: createLogger({ service: 'billing-test', level: 'silent' }),
      metrics,
    });
    try {
      // Drift is counted every round: the worker's first round counts the window left drifting above again.
      const checked = await waitFor('a background round', async () => {
        const { rows } = await h.fx.admin.query<{ n: number }>('SELECT count(*)::int AS n FROM usage_reconciliations WHERE checked_at >= $1', [startedAt]);
        return rows[0]!.n > 0 ? rows[0]!.n : undefined;
      });
      expect(checked).toBeGreaterThan(0);
    } finally {
      await worker.stop();
    }
    const { body } = await metrics.render();
    expect(body).toMatch(/aif_billing_usage_drift_windows\{service="billing-test"\} 1/);
  });
});

describe('raw-usage compaction', () => {
  let h: Harness;
  let compaction: UsageCompaction;
  const clock = new ManualClock(new Date('2024-07-15T00:00:00.000Z'));
  const authz = billingAccess();
  const admin = () => ({ ...authz.caller(platformAdmin), accessModel: policySource() });

  beforeAll(async () => {
    h = await startHarness();
    compaction = new UsageCompaction(h.fx.database.pool, new UsageCompactionStore(), h.reconciliation(clock), { subjectPrefix: h.subjectPrefix, clock });
  }, 60_000);

  afterAll(async () => {
    await h?.fx.close();
  });

  const blockedGate = async (work: Promise<unknown>) => {
    try {
      await work;
      return 'compacted';
    } catch (error) {
      const refused = error as { code?: string; details?: { gate?: string } };
      return `${refused.code}:${refused.details?.gate ?? ''}`;
    }
  };
  const rawEvents = async (organizationId: string) =>
    (await h.fx.admin.query<{ n: number }>('SELECT count(*)::int AS n FROM usage_events WHERE organization_id = $1', [organizationId])).rows[0]!.n;

  it('is for platform admins only', async () => {
    const organizationId = randomUUID();
    const caller = { ...authz.caller(orgAdmin(organizationId)), accessModel: policySource() };

    expect(await codeOf(compaction.recordAuditReview(caller, '2024-01'))).toBe('AUTH_FORBIDDEN');
    expect(await codeOf(compaction.compact(caller, '2024-01'))).toBe('AUTH_FORBIDDEN');
  });

  it('reviews only months that have ended, and compacts none before its review', async () => {
    expect(await codeOf(compaction.recordAuditReview(admin(), '2024-07'))).toBe('BAD_REQUEST_INVALID_INPUT');
    expect(await codeOf(compaction.recordAuditReview(admin(), '2024-13'))).toBe('BAD_REQUEST_INVALID_INPUT');
    expect(await blockedGate(compaction.compact(admin(), '2024-01'))).toBe('BILLING_COMPACTION_BLOCKED:audit_review');
  });

  it("refuses while an organization's dispute window is still open", async () => {
    const scope = scopeOf();
    await insertRatedEvent(h.fx.admin, scope, { occurredAt: new Date('2024-05-10T10:00:00.000Z') });
    await compaction.recordAuditReview(admin(), '2024-05', 'reviewed');

    // 2024-06-01 + P60D is after 2024-07-15.
    expect(await blockedGate(compaction.compact(admin(), '2024-05'))).toBe('BILLING_COMPACTION_BLOCKED:dispute_window');
    // An organization whose dispute window is 30 days is past it.
    const shorter = { ...admin(), accessModel: policySource({ 'billing.usage.dispute_window': 'P30D' }) };
    expect(await blockedGate(compaction.compact(shorter, '2024-05'))).toBe('compacted');
  });

  it('waits past the late limit where it ends after the dispute window, and a grace after both', async () => {
    const scope = scopeOf();
    await insertRatedEvent(h.fx.admin, scope, { occurredAt: new Date('2024-06-10T10:00:00.000Z') });
    await compaction.recordAuditReview(admin(), '2024-06');
    const under = (values: Record<string, string>) => ({ ...admin(), accessModel: policySource(values) });

    // Until 2024-07-21 usage of June can still be accepted, whatever the dispute window says.
    expect(await blockedGate(compaction.compact(under({ 'billing.usage.dispute_window': 'P10D', 'billing.usage.late_limit': 'P20D' }), '2024-06'))).toBe(
      'BILLING_COMPACTION_BLOCKED:dispute_window',
    );
    // Both end at 2024-07-15T00:00, this very instant: a batch classified just before may still be committing.
    expect(await blockedGate(compaction.compact(under({ 'billing.usage.dispute_window': 'P14D', 'billing.usage.late_limit': 'P14D' }), '2024-06'))).toBe(
      'BILLING_COMPACTION_BLOCKED:dispute_window',
    );
    expect(await blockedGate(compaction.compact(under({ 'billing.usage.dispute_window': 'P13D', 'billing.usage.late_limit': 'P13D' }), '2024-06'))).toBe(
      'compacted',
    );
  });

  it("reads the longest late limit of the organization's projects and departments", () => {
    const snapshot = policySource({ 'billing.usage.late_limit': 'P20D' }).policy(randomUUID());
    const departmentId = randomUUID();
    const longer = {
      ...snapshot,
      layers: { ...snapshot.layers, projects: { [randomUUID()]: { departmentId, values: { 'billing.usage.late_limit': 'P90D' } } } },
    };

    expect(lateLimitMs(snapshot)).toBe(20 * 86_400_000);
    expect(lateLimitMs(longer)).toBe(90 * 86_400_000);
  });

  it('deletes rejected and rated events only: usage accepted after the gates were read is left to be rated', async () => {
    const scope = scopeOf();
    const at = new Date('2023-01-10T10:00:00.000Z');
    const rated = await insertRatedEvent(h.fx.admin, scope, { occurredAt: at });
    const rejected = await insertUsageEvent(h.fx.admin, scope, { occurredAt: at, rejectionReason: 'too_late' });
    const unrated = await insertUsageEvent(h.fx.admin, scope, { occurredAt: at });

    const removed = await inTransaction(h.fx.database.pool, (tx) => new UsageCompactionStore().deleteRawUsage(tx, monthArgument('2023-01')));

    expect(removed.events).toBe(2n);
    const { rows } = await h.fx.admin.query<{ event_id: string }>('SELECT event_id FROM usage_events WHERE event_id = ANY($1::uuid[])', [[rated, rejected, unrated]]);
    expect(rows.map((row) => row.event_id)).toEqual([unrated]);
  });

  it('refuses while usage of the month is unrated', async () => {
    const scope = scopeOf();
    await insertUsageEvent(h.fx.admin, scope, { occurredAt: new Date('2024-02-10T10:00:00.000Z') });
    await compaction.recordAuditReview(admin(), '2024-02');

    expect(await blockedGate(compaction.compact(admin(), '2024-02'))).toBe('BILLING_COMPACTION_BLOCKED:unrated_usage');
    expect(await rawEvents(scope.organizationId)).toBe(1);
  });

  it('refuses while a reconciliation window of the month drifts, counted again at compaction', async () => {
    const scope = scopeOf();
    const start = new Date('2024-03-10T10:00:00.000Z');
    await insertRatedEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, 0.5) });
    await insertSummary(h.fx.admin, { organizationId: scope.organizationId, windowStart: start, windowEnd: hoursAfter(start, 1), eventCount: 2, quantity: 2n });
    await compaction.recordAuditReview(admin(), '2024-03');

    expect(await blockedGate(compaction.compact(admin(), '2024-03'))).toBe('BILLING_COMPACTION_BLOCKED:reconciliation_drift');
    expect(await rawEvents(scope.organizationId)).toBe(1);
  });

  it('deletes the raw usage and conflicts of the month once every gate holds, keeps what was billed, audits it, and is done once', async () => {
    const scope = scopeOf();
    const start = new Date('2024-04-10T10:00:00.000Z');
    await insertRatedEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, 0.5), actor: { type: 'user', id: 'alice' } });
    await insertRatedEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, 0.6) });
    await insertUsageEvent(h.fx.admin, scope, { occurredAt: hoursAfter(start, 0.7), rejectionReason: 'too_late' });
    await insertConflict(h.fx.admin, scope, randomUUID(), hoursAfter(start, 1));
    // The next month's usage stays.
    const june = await insertRatedEvent(h.fx.admin, scope, { occurredAt: new Date('2024-06-20T10:00:00.000Z') });
    await insertSummary(h.fx.admin, { organizationId: scope.organizationId, windowStart: start, windowEnd: hoursAfter(start, 1), eventCount: 2, quantity: 2n });
    const review = await compaction.recordAuditReview(admin(), '2024-04', 'April reconciled with finance');

    const compacted = await compaction.compact(admin(), '2024-04');
    const again = await compaction.compact(admin(), '2024-04');

    expect(review).toMatchObject({ period: '2024-04-01', auditReviewedBy: { type: 'user', id: 'platform-admin' } });
    expect(compacted).toMatchObject({ period: '2024-04-01', compactedAt: clock.now(), eventsRemoved: 3n });
    expect(again).toEqual(compacted);
    const { rows: left } = await h.fx.admin.query<{ event_id: string }>('SELECT event_id FROM usage_events WHERE organization_id = $1', [scope.organizationId]);
    expect(left.map((row) => row.event_id)).toEqual([june]);
    const kept = await h.fx.admin.query<{ ratings: number; conflicts: number }>(
      `SELECT (SELECT count(*)::int FROM usage_ratings WHERE organization_id = $1) AS ratings,
              (SELECT count(*)::int FROM usage_conflicts WHERE organization_id = $1) AS conflicts`,
      [scope.organizationId],
    );
    // Ratings stay (no personal data; a replayed event is never rated twice); conflicts held envelopes and go.
    expect(kept.rows[0]).toEqual({ ratings: 3, conflicts: 0 });
    const { rows: audits } = await h.fx.admin.query<{ type: string; payload: { details: Record<string, string>; reason: string | null } }>(
      `SELECT type, payload FROM outbox_events WHERE type LIKE '%billing.usage.%' ORDER BY occurred_at`,
    );
    expect(audits.filter((a) => a.payload.details.period === '2024-04').map((a) => [a.type.split('.').slice(-2).join('.'), a.payload.reason])).toEqual([
      ['usage.audit_review', 'April reconciled with finance'],
      ['usage.compact', null],
    ]);
    expect(audits.find((a) => a.type.endsWith('usage.compact') && a.payload.details.period === '2024-04')?.payload.details).toMatchObject({
      eventsRemoved: '3',
      conflictsRemoved: '1',
    });

    // The month's windows are never counted again: their events are gone on purpose, not missing.
    const later = await h.reconciliation(clock).reconcileSpan(new Date('2024-04-01T00:00:00.000Z'), new Date('2024-05-01T00:00:00.000Z'), actor);
    expect(later.windows.filter((w) => w.organizationId === scope.organizationId)).toEqual([]);
  });
});
