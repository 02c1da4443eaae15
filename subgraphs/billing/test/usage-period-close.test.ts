/**
 * Closing remainder chains: once a month's usage can no longer arrive and
 * none of it waits for rating, what is left below one minor unit is dropped
 * and recorded, never posted (ARCHITECTURE.md, Decisions: Money).
 */
import { ManualClock } from '@aifactory/clock';
import { uniqueEventSubjectPrefix } from '@aifactory/testing';
import { AccountDirectory } from '../src/data/account-directory.js';
import { BalanceAlerts } from '../src/domain/balance-alerts.js';
import { Ledger } from '../src/domain/ledger.js';
import { CLOSE_GRACE_MS, UsagePeriodCloses } from '../src/domain/usage-period-close.js';
import { defaultUsagePolicy } from '../src/domain/usage-ingestion.js';
import { UsageRating } from '../src/domain/usage-rating.js';
import { startBillingFixture, type BillingFixture } from './billing-fixture.js';
import { randomUUID } from 'node:crypto';
import { insertBatch, openedEvent, pointEvent, snapshotPrice } from './rating-fixture.js';

const D = 3_600_000_000_000_000n;
const DAY_MS = 86_400_000;
/** February 2026 ends on March 1st; usage of it is accepted for 35 days more, then rating has a day. */
const FEBRUARY_CLOSES_AT = Date.UTC(2026, 2, 1) + 35 * DAY_MS + CLOSE_GRACE_MS;

let fx: BillingFixture;
let rating: UsageRating;
let closes: UsagePeriodCloses;

beforeAll(async () => {
  fx = await startBillingFixture({ poolSize: 4 });
  const clock = new ManualClock(Date.UTC(2026, 1, 20));
  rating = new UsageRating(fx.database.pool, new Ledger(fx.database.pool, new AccountDirectory(fx.database.pool)), {
    balanceAlerts: new BalanceAlerts({ subjectPrefix: uniqueEventSubjectPrefix() }),
    clock,
  });
  closes = new UsagePeriodCloses(fx.database.pool, defaultUsagePolicy);
});

afterAll(async () => {
  await fx?.close();
});

async function closesOf(organizationId: string) {
  const { rows } = await fx.admin.query<{ period: string; exact_units: string; posted: string; dropped_units: string }>(
    `SELECT period::text AS period, exact_units::text, posted::text, dropped_units::text FROM usage_period_closes WHERE organization_id = $1 ORDER BY period`,
    [organizationId],
  );
  return rows;
}

describe('closing a month of usage', () => {
  it('drops and records the remainder below one minor unit once the late-usage limit has passed, once', async () => {
    const scope = await fx.organization({ paid: 1_000n });
    const at = new Date(Date.UTC(2026, 1, 10, 12));
    for (let i = 0; i < 3; i += 1) await rating.rateBatch((await insertBatch(fx.admin, [pointEvent(scope, snapshotPrice('0.4'), 1n, at)])).batchId);

    expect(await closes.closeDue(new Date(FEBRUARY_CLOSES_AT - 1))).toEqual([]);
    const closed = await closes.closeDue(new Date(FEBRUARY_CLOSES_AT));
    expect(closed.filter((close) => close.organizationId === scope.organizationId)).toEqual([
      expect.objectContaining({ period: '2026-02-01', posted: 1n, exactUnits: (12n * D) / 10n, droppedUnits: (2n * D) / 10n }),
    ]);
    expect(await closesOf(scope.organizationId)).toEqual([
      { period: '2026-02-01', exact_units: ((12n * D) / 10n).toString(), posted: '1', dropped_units: ((2n * D) / 10n).toString() },
    ]);
    // The dropped remainder was never posted: the ledger holds the whole minor unit only.
    const funds = await fx.admin.query('SELECT paid::text FROM organization_funds WHERE organization_id = $1', [scope.organizationId]);
    expect(funds.rows[0].paid).toBe('999');

    expect((await closes.closeDue(new Date(FEBRUARY_CLOSES_AT + DAY_MS))).filter((close) => close.organizationId === scope.organizationId)).toEqual([]);
    expect(await closesOf(scope.organizationId)).toHaveLength(1);
  });

  it('leaves open a month whose usage still waits for rating, and the month in progress', async () => {
    const scope = await fx.organization();
    const february = new Date(Date.UTC(2026, 1, 11));
    await rating.rateBatch((await insertBatch(fx.admin, [pointEvent(scope, snapshotPrice('0.4'), 1n, february)])).batchId);
    // Accepted but not rated yet (its job still queued): the month cannot close under it.
    await insertBatch(fx.admin, [pointEvent(scope, snapshotPrice('0.4'), 1n, february)]);
    const now = new Date(FEBRUARY_CLOSES_AT);
    const april = new Date(Date.UTC(2026, 3, 2));
    await rating.rateBatch((await insertBatch(fx.admin, [pointEvent(scope, snapshotPrice('0.4'), 1n, april)])).batchId);

    expect((await closes.closeDue(now)).filter((close) => close.organizationId === scope.organizationId)).toEqual([]);
    expect(await closesOf(scope.organizationId)).toEqual([]);
  });

  it('leaves open a month into which an interval still open since then may bill windows or take them back', async () => {
    const scope = await fx.organization({ paid: 1_000_000n });
    const february = new Date(Date.UTC(2026, 1, 27, 22));
    await rating.rateBatch((await insertBatch(fx.admin, [pointEvent(scope, snapshotPrice('0.4'), 1n, february)])).batchId);
    await rating.rateBatch((await insertBatch(fx.admin, [openedEvent(scope, snapshotPrice('250', { basePerUnit: 3600 }), randomUUID(), february)])).batchId);

    expect((await closes.closeDue(new Date(FEBRUARY_CLOSES_AT))).filter((close) => close.organizationId === scope.organizationId)).toEqual([]);
    await fx.admin.query('UPDATE usage_intervals SET closed_at = $2 WHERE organization_id = $1', [scope.organizationId, new Date(Date.UTC(2026, 1, 28))]);
    expect((await closes.closeDue(new Date(FEBRUARY_CLOSES_AT))).filter((close) => close.organizationId === scope.organizationId)).toHaveLength(1);
  });
});
