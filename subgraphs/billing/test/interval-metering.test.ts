/**
 * Issue 17, interval metering: a long-lived resource is billed in windows of
 * the length snapshotted at its opening, anchored there, at the price in
 * force at its opening; its close bills the whole seconds of the last window
 * and takes back what was billed past it. Whatever order and however late
 * the events are rated, an interval costs floor(elapsed seconds) x GPUs x
 * price, and a window is billed once.
 */
import { randomUUID } from 'node:crypto';
import { ManualClock } from '@aifactory/clock';
import type { UsageRating } from '../src/domain/usage-rating.js';
import {
  checkChains,
  closedEvent,
  expectedMinor,
  insertBatch,
  openedEvent,
  ratedState,
  snapshotPrice,
  useRatingHarness,
  type SnapshotPrice,
  type UsageScope,
} from './rating-fixture.js';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const GPU_HOUR = snapshotPrice('100.000000000007', { basePerUnit: 3600 });

const clock = new ManualClock(Date.UTC(2026, 3, 1));
const h = useRatingHarness(clock);

const after = (start: Date, ms: number) => new Date(start.getTime() + ms);

async function rate(events: Parameters<typeof insertBatch>[1]) {
  const { batchId } = await insertBatch(h.fx.admin, events);
  return h.rating.rateBatch(batchId);
}

/**
 * The organization was charged exactly floor(GPU-seconds x price) in each
 * month (computed apart from rating), in its chains, the ledger, its funds
 * and its budget; `quantities` are GPU-seconds per month (`2026-04`).
 */
async function expectCharged(scope: UsageScope, price: SnapshotPrice, quantities: Record<string, bigint>): Promise<void> {
  const state = await ratedState(h.fx.admin, scope.organizationId);
  const chains = checkChains(state.steps);
  const expected = new Map(Object.entries(quantities).map(([month, quantity]) => [`${scope.projectId}:${month}-01`, expectedMinor([{ quantity, unitPrice: price.unitPrice, basePerUnit: price.basePerUnit }])]));
  expect(new Map([...chains].map(([key, chain]) => [key, chain.posted]))).toEqual(expected);
  const total = [...expected.values()].reduce((sum, posted) => sum + posted, 0n);
  expect({ lineQuantity: state.lineQuantity, revenue: state.revenue, funds: state.funds, spent: state.spent }).toEqual({
    lineQuantity: Object.values(quantities).reduce((sum, quantity) => sum + quantity, 0n),
    revenue: total,
    funds: -total,
    spent: total,
  });
}

async function lineCount(scope: UsageScope): Promise<number> {
  const { rows } = await h.fx.admin.query<{ n: number }>('SELECT count(*)::int AS n FROM usage_lines WHERE organization_id = $1', [scope.organizationId]);
  return rows[0]!.n;
}

/**
 * Runs accrual (every organization's: other tests leave intervals open) at
 * the clock's time on the given raters at once; returns the lines it wrote
 * for this test's organization.
 */
async function accrue(scope: UsageScope, raters: readonly UsageRating[] = [h.rating]): Promise<number> {
  const before = await lineCount(scope);
  const rounds = await Promise.all(raters.map((rater) => rater.accrueDue(clock.now())));
  expect(rounds.flatMap((round) => round.failed)).toEqual([]);
  return (await lineCount(scope)) - before;
}

async function windowLines(usageId: string) {
  const { rows } = await h.fx.admin.query<{ line_key: string; kind: string; quantity: string; window_start: Date; window_end: Date; price_book_id: string; unit_price: string }>(
    'SELECT line_key, kind, quantity::text, window_start, window_end, price_book_id, unit_price::text FROM usage_lines WHERE usage_id = $1 ORDER BY id',
    [usageId],
  );
  return rows;
}

describe('interval metering', () => {
  it('bills full windows as they end and the final partial window at the close: elapsed seconds x GPUs x the opening price', async () => {
    const scope = await h.fx.organization();
    const usageId = randomUUID();
    const openedAt = new Date('2026-04-10T10:00:00.250Z');
    clock.set(after(openedAt, 10 * MINUTE));
    expect(await rate([openedEvent(scope, GPU_HOUR, usageId, openedAt, { gpus: 8n })])).toMatchObject({ events: 1, lines: 0 });
    expect(await accrue(scope)).toBe(0);

    clock.set(after(openedAt, HOUR));
    expect(await accrue(scope)).toBe(1);
    clock.set(after(openedAt, 3 * HOUR + 30 * MINUTE));
    expect(await accrue(scope)).toBe(2);

    const closedAt = after(openedAt, 3 * HOUR + 30 * MINUTE + 12_500);
    clock.set(after(closedAt, 5 * SECOND));
    expect(await rate([closedEvent(scope, GPU_HOUR, usageId, openedAt, closedAt, { gpus: 8n })])).toMatchObject({ events: 1, lines: 1 });
    clock.set(after(closedAt, 10 * HOUR));
    expect(await accrue(scope)).toBe(0);

    expect((await windowLines(usageId)).map((line) => [line.line_key, line.kind, line.quantity, line.window_start, line.window_end])).toEqual([
      ...[0, 1, 2].map((i) => [`window:${usageId}:${i}`, 'window', '28800', after(openedAt, i * HOUR), after(openedAt, (i + 1) * HOUR)]),
      [`window:${usageId}:3`, 'window', String(1_812 * 8), after(openedAt, 3 * HOUR), after(openedAt, 4 * HOUR)],
    ]);
    const { rows } = await h.fx.admin.query('SELECT closed_at, next_window FROM usage_intervals WHERE usage_id = $1', [usageId]);
    expect(rows).toEqual([{ closed_at: closedAt, next_window: 4 }]);
    // 12612 s x 8 GPUs.
    await expectCharged(scope, GPU_HOUR, { '2026-04': 100_896n });
  });

  it('bills a window once however often accrual replays it, on one instance or two', async () => {
    const scope = await h.fx.organization();
    const usageId = randomUUID();
    const openedAt = new Date('2026-04-11T00:00:00Z');
    clock.set(openedAt);
    await rate([openedEvent(scope, GPU_HOUR, usageId, openedAt, { gpus: 2n })]);
    clock.set(after(openedAt, 2 * HOUR + 1));
    expect(await accrue(scope, [h.rating, h.newRater()])).toBe(2);
    expect(await accrue(scope)).toBe(0);

    // A cursor set back (a restore, a bug) does not bill the windows again: their lines exist.
    const before = await ratedState(h.fx.admin, scope.organizationId);
    await h.fx.admin.query('UPDATE usage_intervals SET next_window = 0 WHERE usage_id = $1', [usageId]);
    expect(await accrue(scope)).toBe(0);
    expect(await ratedState(h.fx.admin, scope.organizationId)).toEqual(before);
    expect((await h.fx.admin.query('SELECT next_window FROM usage_intervals WHERE usage_id = $1', [usageId])).rows[0].next_window).toBe(2);
    await expectCharged(scope, GPU_HOUR, { '2026-04': 2n * 2n * 3600n });
  });

  it('keeps the price and window length of the opening when both change before the close', async () => {
    const scope = await h.fx.organization();
    const usageId = randomUUID();
    const openedAt = new Date('2026-04-12T06:00:00Z');
    clock.set(openedAt);
    await rate([openedEvent(scope, GPU_HOUR, usageId, openedAt, { windowSeconds: 3600 })]);
    clock.set(after(openedAt, 2 * HOUR));
    expect(await accrue(scope)).toBe(2);
    // What ingestion saw at the close: a new price book and a one-minute window policy. Neither applies to this interval.
    const newer = snapshotPrice('999', { basePerUnit: 3600, priceBookVersion: 2 });
    const closedAt = after(openedAt, 2 * HOUR + 30 * MINUTE);
    clock.set(closedAt);
    await rate([closedEvent(scope, newer, usageId, openedAt, closedAt, { windowSeconds: 60 })]);

    const lines = await windowLines(usageId);
    expect(lines.map((line) => [line.window_end.getTime() - line.window_start.getTime(), line.price_book_id, line.unit_price])).toEqual(
      [0, 1, 2].map(() => [HOUR, GPU_HOUR.priceBookId, '100.000000000007']),
    );
    await expectCharged(scope, GPU_HOUR, { '2026-04': 9_000n });
  });

  it('takes back what was billed past a close processed after two more windows, to exactly elapsed x price', async () => {
    const scope = await h.fx.organization();
    const usageId = randomUUID();
    const openedAt = new Date('2026-04-13T08:00:00.500Z');
    clock.set(openedAt);
    await rate([openedEvent(scope, GPU_HOUR, usageId, openedAt, { gpus: 4n })]);
    clock.set(after(openedAt, 3 * HOUR + 5 * MINUTE));
    expect(await accrue(scope)).toBe(3);

    // The allocation ended 1 h 20 min 0.9 s in; its close arrives after windows 1 and 2 were billed in full.
    const closedAt = after(openedAt, HOUR + 20 * MINUTE + 900);
    expect(await rate([closedEvent(scope, GPU_HOUR, usageId, openedAt, closedAt, { gpus: 4n })])).toMatchObject({ events: 1, lines: 2 });
    expect((await windowLines(usageId)).slice(3).map((line) => [line.line_key, line.kind, line.quantity])).toEqual([
      [`window:${usageId}:1:close`, 'close_adjustment', String(1_200 * 4 - 3_600 * 4)],
      [`window:${usageId}:2:close`, 'close_adjustment', String(-3_600 * 4)],
    ]);
    const state = await ratedState(h.fx.admin, scope.organizationId);
    expect(BigInt(state.steps.at(-1)!.delta)).toBeLessThan(0n);
    const { rows } = await h.fx.admin.query(`SELECT kind FROM postings WHERE organization_id = $1 AND kind LIKE 'usage%' ORDER BY seq`, [scope.organizationId]);
    expect(rows.map((row) => row.kind)).toEqual(['usage', 'usage_adjustment']);
    // 4800 s x 4 GPUs, whatever was billed before: the paid balance got the difference back.
    await expectCharged(scope, GPU_HOUR, { '2026-04': 19_200n });
  });

  it('bills a close delivered before its opening once the opening arrives, and nothing before', async () => {
    const scope = await h.fx.organization();
    const usageId = randomUUID();
    const openedAt = new Date('2026-04-14T12:00:00Z');
    const closedAt = after(openedAt, 90 * MINUTE + 999);
    clock.set(after(closedAt, HOUR));
    const closing = await insertBatch(h.fx.admin, [closedEvent(scope, GPU_HOUR, usageId, openedAt, closedAt, { gpus: 3n })]);
    const first = await h.rating.rateBatch(closing.batchId);
    expect(first).toMatchObject({ events: 0, lines: 0 });
    expect(first.marked).not.toBeNull();
    expect(await accrue(scope)).toBe(0);
    expect((await ratedState(h.fx.admin, scope.organizationId)).ratings).toBe(0);

    // The opening's batch rates the waiting close with it.
    expect(await rate([openedEvent(scope, GPU_HOUR, usageId, openedAt, { gpus: 3n })])).toMatchObject({ events: 2, lines: 2 });
    const state = await ratedState(h.fx.admin, scope.organizationId);
    expect(state.ratings).toBe(2);
    await expectCharged(scope, GPU_HOUR, { '2026-04': 5_400n * 3n });
  });

  it('bills nothing for an interval that was never opened; its close waits unrated', async () => {
    const scope = await h.fx.organization();
    const usageId = randomUUID();
    const openedAt = new Date('2026-04-15T12:00:00Z');
    const closedAt = after(openedAt, 5 * HOUR);
    clock.set(after(closedAt, HOUR));
    const { batchId, eventIds } = await insertBatch(h.fx.admin, [closedEvent(scope, GPU_HOUR, usageId, openedAt, closedAt)]);
    expect(await h.rating.rateBatch(batchId)).toMatchObject({ events: 0, lines: 0 });
    expect(await accrue(scope)).toBe(0);
    expect(await h.rating.rateUnrated(openedAt, after(closedAt, 1))).toEqual({ batches: 1, events: 0 });
    const { rows } = await h.fx.admin.query(
      `SELECT (SELECT count(*) FROM usage_intervals WHERE usage_id = $1)::int AS intervals,
              (SELECT count(*) FROM usage_ratings WHERE event_id = $2)::int AS ratings`,
      [usageId, eventIds[0]],
    );
    expect(rows[0]).toEqual({ intervals: 0, ratings: 0 });
    const state = await ratedState(h.fx.admin, scope.organizationId);
    expect({ lines: state.lines, steps: state.steps.length, funds: state.funds }).toEqual({ lines: 0, steps: 0, funds: 0n });
  });

  it('bills the windows that ended before a late opening was rated, as the opening’s lines', async () => {
    const scope = await h.fx.organization();
    const usageId = randomUUID();
    const openedAt = new Date('2026-04-16T00:00:00Z');
    clock.set(after(openedAt, 5 * HOUR + 30 * MINUTE));
    const { batchId, eventIds } = await insertBatch(h.fx.admin, [openedEvent(scope, GPU_HOUR, usageId, openedAt)]);
    expect(await h.rating.rateBatch(batchId)).toMatchObject({ events: 1, lines: 5 });
    const { rows } = await h.fx.admin.query(
      `SELECT DISTINCT l.event_id, r.usage_posting_id IS NOT NULL AS posted FROM usage_lines l JOIN usage_ratings r ON r.event_id = l.event_id WHERE l.usage_id = $1`,
      [usageId],
    );
    expect(rows).toEqual([{ event_id: eventIds[0], posted: true }]);
    await expectCharged(scope, GPU_HOUR, { '2026-04': 5n * 3600n });
  });

  it('posts windows in the month each starts in', async () => {
    const price = snapshotPrice('0.7', { basePerUnit: 3600 });
    const scope = await h.fx.organization();
    const usageId = randomUUID();
    const openedAt = new Date('2026-01-31T22:30:00Z');
    clock.set(openedAt);
    await rate([openedEvent(scope, price, usageId, openedAt, { gpus: 2n })]);
    clock.set(new Date('2026-02-01T01:00:00Z'));
    expect(await accrue(scope)).toBe(2);
    const closedAt = new Date('2026-02-01T01:15:00Z');
    await rate([closedEvent(scope, price, usageId, openedAt, closedAt, { gpus: 2n })]);
    // Windows 0 and 1 start on 31 January; window 2 (00:30 to 01:15 used) on 1 February.
    await expectCharged(scope, price, { '2026-01': 2n * 3600n * 2n, '2026-02': 2_700n * 2n });
  });

  it('bills a long backlog of short windows over several transactions, each window once', async () => {
    const scope = await h.fx.organization();
    const usageId = randomUUID();
    const openedAt = new Date('2026-04-17T00:00:00Z');
    clock.set(openedAt);
    await rate([openedEvent(scope, GPU_HOUR, usageId, openedAt, { windowSeconds: 60 })]);
    clock.set(after(openedAt, 2_500 * MINUTE + 59 * SECOND));
    expect(await accrue(scope)).toBe(2_500);
    const state = await ratedState(h.fx.admin, scope.organizationId);
    expect(state.steps.map((step) => step.lines)).toEqual([1_000, 1_000, 500]);
    await expectCharged(scope, GPU_HOUR, { '2026-04': 2_500n * 60n });
  });
});
