import type { ServiceMetrics } from '@aifactory/telemetry';
import type pg from 'pg';
import { systemClock, type Clock } from '@aifactory/clock';
import type { Actor } from '@aifactory/contracts';
import { AppError } from '@aifactory/errors';
import { LedgerStore } from '../data/ledger-store.js';
import { inTransaction, type Tx } from '../data/transactions.js';
import {
  UsageRatingStore,
  type IntervalRecord,
  type NewChainStep,
  type NewInterval,
  type RatableEvent,
  type RatedLine,
  type RollupDelta,
  type UsageLineKind,
} from '../data/usage-rating-store.js';
import type { BalanceAlerts } from './balance-alerts.js';
import { closeChanges, dueWindows, fullWindowQuantity, windowSpan } from './interval-windows.js';
import type { Ledger } from './ledger.js';
import { periodOf } from './money.js';
import { chainStep, exactUnitsOf } from './rating-amounts.js';

export const RATING_ACTOR: Actor = { type: 'system', id: 'billing.usage-rating' };
/** `billing.balance.low_warning_threshold`'s registry default, for an organization none of whose usage carried one. */
export const DEFAULT_LOW_BALANCE_THRESHOLD = 1000n;
/** Windows billed per interval in one transaction: a long outage's backlog is billed over several, none of them huge. */
const WINDOWS_PER_TRANSACTION = 1_000;
const HOUR_MS = 3_600_000;

export interface UsageRatingOptions {
  /** Low-balance and depletion announcements, checked in every transaction that moved the balance. */
  balanceAlerts: Pick<BalanceAlerts, 'checkIn'>;
  clock?: Clock;
}

export interface BatchRating {
  batchId: string;
  /** Events this call rated (claimed), over every organization of the batch. */
  events: number;
  lines: number;
  /** When this call marked the batch rated; null when it had been marked before. */
  marked: { receivedAt: Date; ratedAt: Date } | null;
}

export interface AccrualRound {
  organizations: number;
  lines: number;
  /** Organizations whose windows could not be billed this round; the next round tries again. */
  failed: { organizationId: string; error: unknown }[];
}

/** What one rating transaction did for an organization. */
interface Rated {
  events: number;
  lines: number;
}

/**
 * Usage to money (issue 17). Rating turns accepted usage into lines priced
 * with what ingestion snapshotted, posts their whole minor units through the
 * ledger along remainder chains (one per organization, project, currency and
 * UTC month: a step posts floor(exact total) minus what the chain posted
 * before; a negative step credits back) and meters open intervals window by
 * window.
 *
 * Every change for one organization happens in one transaction that first
 * locks the organization's funds row, the ledger's first lock, so rating
 * runs of one organization (batches, accrual, a repeat after a crash) queue
 * there and a chain's steps never race; an event is rated by the
 * transaction whose usage_ratings row for it commits, and only once.
 */
export class UsageRating {
  private readonly store = new UsageRatingStore();
  private readonly funds = new LedgerStore();
  private readonly clock: Clock;

  constructor(
    private readonly pool: pg.Pool,
    private readonly ledger: Ledger,
    private readonly options: UsageRatingOptions,
  ) {
    this.clock = options.clock ?? systemClock;
  }

  /**
   * Rates what is unrated in an ingested batch, one transaction per
   * organization in id order, then marks the batch rated. Safe to repeat and
   * to run beside another rater of the same batch: what either rated is
   * skipped. An organization that fails does not hold up the others; the
   * batch then stays unrated and the call throws, so the job is retried.
   */
  async rateBatch(batchId: string): Promise<BatchRating> {
    const rating: BatchRating = { batchId, events: 0, lines: 0, marked: null };
    const errors: unknown[] = [];
    for (const organizationId of await this.store.unratedOrganizations(this.pool, batchId)) {
      try {
        const rated = await inTransaction(this.pool, (tx) => this.rateOrganizationIn(tx, batchId, organizationId));
        rating.events += rated.events;
        rating.lines += rated.lines;
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `rating failed for ${errors.length} organizations of usage batch ${batchId}`);
    rating.marked = await this.store.markBatchRated(this.pool, batchId);
    return rating;
  }

  /**
   * Bills every window of an open interval that has ended by `now`, each
   * organization in transactions of its own. Idempotent: a window is billed
   * once (its line key), however many instances accrue at once.
   */
  async accrueDue(now: Date = this.clock.now()): Promise<AccrualRound> {
    const round: AccrualRound = { organizations: 0, lines: 0, failed: [] };
    for (const organizationId of await this.store.organizationsWithDueWindows(this.pool, now)) {
      try {
        for (;;) {
          const accrued = await inTransaction(this.pool, (tx) => this.accrueOrganizationIn(tx, organizationId, now));
          round.lines += accrued.lines;
          if (!accrued.more) break;
        }
        round.organizations += 1;
      } catch (error) {
        round.failed.push({ organizationId, error });
      }
    }
    return round;
  }

  /**
   * Rates accepted but unrated usage that occurred in [from, to), batch by
   * batch (the reconcile CLI's repair). Returns the batches it went through
   * and the events it rated; a closing still waiting for its opening stays
   * unrated.
   */
  async rateUnrated(from: Date, to: Date): Promise<{ batches: number; events: number }> {
    const batches = await this.store.batchesWithUnratedEvents(this.pool, from, to);
    let events = 0;
    for (const batchId of batches) events += (await this.rateBatch(batchId)).events;
    return { batches: batches.length, events };
  }

  /** Batches received at or before `receivedBefore` and never marked rated: the sweeper enqueues them again. */
  /**
   * `aif_billing_usage_unrated_events`: accepted usage in batches not rated
   * yet (seed 002's "unrated events"); a closing that waits for its opening
   * shows in reconciliation instead.
   */
  attachMetrics(metrics: ServiceMetrics): void {
    metrics.gauge('aif_billing_usage_unrated_events', 'Accepted usage events in batches not rated yet.', [], async (gauge) => {
      // A scrape must not fail because Postgres is briefly away: the gauge keeps its last value.
      const events = await this.store.unratedEvents(this.pool).catch(() => undefined);
      if (events !== undefined) gauge.set(events);
    });
  }

  unratedBatches(receivedBefore: Date, limit: number): Promise<string[]> {
    return this.store.unratedBatches(this.pool, receivedBefore, limit);
  }

  private async rateOrganizationIn(tx: Tx, batchId: string, organizationId: string): Promise<Rated> {
    const now = this.clock.now();
    const currency = await this.lockFunds(tx, organizationId);
    const claimed = await this.store.claimEvents(tx, batchId, organizationId);
    const openings = claimed.filter((event) => event.kind === 'opened');
    await this.store.insertIntervals(tx, openings.map(intervalSnapshot));
    const closings = await this.store.claimClosings(tx, organizationId, batchId, [...new Set(openings.map((event) => event.usageId))]);
    const events = [...claimed, ...closings];
    if (events.length === 0) return { events: 0, lines: 0 };

    const lines = claimed.filter((event) => event.kind === 'recorded').map(pointLine);
    const intervals = new Map(
      (await this.store.intervals(tx, organizationId, [...new Set([...openings, ...closings].map((event) => event.usageId))])).map((interval) => [
        interval.usageId,
        interval,
      ]),
    );
    lines.push(...(await this.close(tx, intervals, closings)));
    // Windows that ended before the opening was rated (late or backed-up usage) are billed now, as the opening's lines.
    const openedBy = new Map(openings.map((event) => [event.usageId, event.eventId]));
    const stillOpen = [...intervals.values()].filter((interval) => interval.closedAt === null && openedBy.has(interval.usageId));
    lines.push(...(await this.billDue(tx, stillOpen, now, (interval) => openedBy.get(interval.usageId)!)).lines);

    const thresholds = events.flatMap((event) => (event.lowBalanceThreshold === null ? [] : [event.lowBalanceThreshold]));
    const threshold = thresholds.length > 0 ? thresholds.reduce((max, value) => (value > max ? value : max)) : undefined;
    const { written, stepOfEvent } = await this.post(tx, organizationId, currency, lines, now, threshold);
    await this.store.setRatingPostings(
      tx,
      events.flatMap((event) => {
        const usagePostingId = stepOfEvent.get(event.eventId);
        return usagePostingId === undefined ? [] : [{ eventId: event.eventId, usagePostingId }];
      }),
    );
    return { events: events.length, lines: written };
  }

  private async accrueOrganizationIn(tx: Tx, organizationId: string, now: Date): Promise<{ lines: number; more: boolean }> {
    const currency = await this.lockFunds(tx, organizationId);
    const due = await this.store.dueIntervals(tx, organizationId, now);
    const { lines, more } = await this.billDue(tx, due, now, (interval) => interval.openedEventId);
    const { written } = await this.post(tx, organizationId, currency, lines, now, undefined);
    return { lines: written, more };
  }

  /** The ledger's first lock; returns the organization's currency. */
  private async lockFunds(tx: Tx, organizationId: string): Promise<string> {
    const funds = (await this.funds.lockFunds(tx, [organizationId])).get(organizationId);
    if (!funds) throw new AppError('BILLING_ORGANIZATION_UNKNOWN', 'Billing has no accounts for this organization yet', { details: { organizationId } });
    return funds.currency;
  }

  /**
   * Closes intervals at their closings' time (the first closing of an
   * interval counts; a repeat is rated with no lines): bills each window not
   * billed yet up to the close and corrects each billed window to what the
   * close makes it worth.
   */
  private async close(tx: Tx, intervals: Map<string, IntervalRecord>, closings: readonly RatableEvent[]): Promise<RatedLine[]> {
    if (closings.length === 0) return [];
    const billed = await this.store.billedWindows(tx, [...new Set(closings.map((event) => event.usageId))]);
    const lines: RatedLine[] = [];
    const closes: { usageId: string; closedAt: Date; closedEventId: string; nextWindow: number }[] = [];
    for (const closing of closings) {
      const interval = intervals.get(closing.usageId);
      if (!interval || interval.closedAt !== null) continue;
      // The database holds closed_at >= opened_at; a close stamped earlier bills nothing (closeTargets) and is stored at the opening.
      const closedAt = closing.occurredAt < interval.openedAt ? interval.openedAt : closing.occurredAt;
      const { changes, windows } = closeChanges(interval, closedAt, billed.get(interval.usageId) ?? new Map());
      for (const change of changes) lines.push(windowLine(interval, change.index, change.kind, change.quantity, closing.eventId));
      interval.closedAt = closedAt;
      closes.push({ usageId: interval.usageId, closedAt, closedEventId: closing.eventId, nextWindow: Math.max(interval.nextWindow, windows) });
    }
    const closed = await this.store.closeIntervals(tx, closes);
    if (closed.size !== closes.length) throw new Error('an interval was closed under the funds lock by another transaction');
    return lines;
  }

  /** Full-window lines for the windows of open intervals that ended by `now`, and the cursors moved past them. */
  private async billDue(
    tx: Tx,
    intervals: readonly IntervalRecord[],
    now: Date,
    eventOf: (interval: IntervalRecord) => string,
  ): Promise<{ lines: RatedLine[]; more: boolean }> {
    const lines: RatedLine[] = [];
    const advances: { usageId: string; nextWindow: number }[] = [];
    let more = false;
    for (const interval of intervals) {
      const due = dueWindows(interval, interval.nextWindow, now, WINDOWS_PER_TRANSACTION);
      if (due.length === 0) continue;
      const full = fullWindowQuantity(interval);
      for (const window of due) lines.push(windowLine(interval, window.index, 'window', full, eventOf(interval)));
      const nextWindow = due[due.length - 1]!.index + 1;
      advances.push({ usageId: interval.usageId, nextWindow });
      if (dueWindows(interval, nextWindow, now, 1).length > 0) more = true;
    }
    await this.store.advanceWindows(tx, advances);
    return { lines, more };
  }

  /**
   * Writes the lines not written yet, one remainder-chain step per chain they
   * fall in, the ledger postings of the steps that moved whole minor units,
   * and the hourly rollups; checks the balance alerts when money moved.
   * Returns how many lines it wrote and the chain step of each event's first line.
   */
  private async post(
    tx: Tx,
    organizationId: string,
    currency: string,
    rated: readonly RatedLine[],
    now: Date,
    threshold: bigint | undefined,
  ): Promise<{ written: number; stepOfEvent: Map<string, string> }> {
    const stepOfEvent = new Map<string, string>();
    const existing = await this.store.existingLineKeys(tx, rated.map((line) => line.lineKey));
    const lines = rated.filter((line) => !existing.has(line.lineKey));
    if (lines.length === 0) return { written: 0, stepOfEvent };
    for (const line of lines) {
      if (line.currency !== currency) {
        throw new AppError('BILLING_CURRENCY_MISMATCH', `Usage priced in ${line.currency} cannot be posted to an organization billed in ${currency}`, {
          details: { organizationId, lineKey: line.lineKey, lineCurrency: line.currency, currency },
        });
      }
    }

    const chains = new Map<string, RatedLine[]>();
    for (const line of lines) {
      const key = chainKey(line);
      const chain = chains.get(key);
      if (chain) chain.push(line);
      else chains.set(key, [line]);
    }
    const heads = new Map(
      (await this.store.chainHeads(tx, organizationId, [...chains.values()].map(([first]) => ({ projectId: first!.projectId, currency, period: first!.period })))).map(
        (head) => [chainKey(head), head],
      ),
    );
    const steps: (NewChainStep & { departmentId: string })[] = [];
    const stepOfLine = new Map<RatedLine, string>();
    for (const [key, chainLines] of chains) {
      const { projectId, departmentId, period } = chainLines[0]!;
      const head = heads.get(key) ?? { step: 0, exactUnits: 0n, posted: 0n };
      const next = chainStep(head, chainLines.reduce((sum, line) => sum + line.exactUnits, 0n));
      const step = head.step + 1;
      const id = `usage:${organizationId}:${projectId}:${period}:${step}`;
      steps.push({ id, organizationId, projectId, departmentId, currency, period, step, ...next, lines: chainLines.length, ledgerPostingId: next.delta === 0n ? null : id });
      for (const line of chainLines) stepOfLine.set(line, id);
    }
    await this.store.insertChainSteps(tx, steps);
    await this.store.insertLines(tx, lines.map((line) => ({ ...line, usagePostingId: stepOfLine.get(line)! })));
    for (const step of steps) await this.postStep(tx, step);
    await this.store.addRollups(tx, rollupsOf(lines));
    if (steps.some((step) => step.delta !== 0n)) {
      await this.options.balanceAlerts.checkIn(tx, organizationId, threshold ?? (await this.store.latestThreshold(tx, organizationId)) ?? DEFAULT_LOW_BALANCE_THRESHOLD, now);
    }
    for (const line of lines) if (!stepOfEvent.has(line.eventId)) stepOfEvent.set(line.eventId, stepOfLine.get(line)!);
    return { written: lines.length, stepOfEvent };
  }

  /**
   * A step's whole minor units through the ledger: a charge (promotional
   * credit first, then the paid balance) when the chain earned more, a
   * credit back to the paid balance from revenue when a close took usage
   * back. The budgets of the chain's project and department count both.
   */
  private async postStep(tx: Tx, step: NewChainStep & { departmentId: string }): Promise<void> {
    const metadata = { period: step.period, step: step.step, lines: step.lines, exactUnits: step.exactUnits.toString() };
    if (step.delta > 0n) {
      await this.ledger.chargeIn(tx, {
        postingId: step.id,
        kind: 'usage',
        organizationId: step.organizationId,
        departmentId: step.departmentId,
        projectId: step.projectId,
        amount: step.delta,
        actor: RATING_ACTOR,
        description: `Usage of ${step.period.slice(0, 7)}`,
        metadata,
      });
    } else if (step.delta < 0n) {
      const accounts = await this.ledger.organizationAccounts(step.organizationId, tx);
      const revenue = await this.ledger.accounts.platformAccount('revenue', step.currency, tx);
      await this.ledger.postIn(tx, [
        {
          id: step.id,
          kind: 'usage_adjustment',
          currency: step.currency,
          organizationId: step.organizationId,
          departmentId: step.departmentId,
          projectId: step.projectId,
          transfers: [{ debitAccountId: revenue.id, creditAccountId: accounts.customer_balance.id, amount: -step.delta, code: 'usage_adjustment' }],
          description: `Usage of ${step.period.slice(0, 7)} taken back at a close`,
          metadata,
          actor: RATING_ACTOR,
        },
      ]);
    }
  }
}

const chainKey = (chain: { projectId: string; currency: string; period: string }) => `${chain.projectId}:${chain.currency}:${chain.period}`;

/**
 * The API key behind usage, as far as the usage contract tells it: usage
 * made with an API key is attributed to the key's service account. Users
 * are never kept here (their ids stay in the raw events, which compaction
 * removes).
 */
function intervalSnapshot(event: RatableEvent): NewInterval {
  if (event.windowSeconds === null) throw new Error(`accepted opening ${event.eventId} has no window length`);
  return {
    usageId: event.usageId,
    product: event.product,
    organizationId: event.organizationId,
    departmentId: event.departmentId,
    projectId: event.projectId,
    apiKeyId: event.apiKeyId,
    resourceType: event.resourceType,
    resourceId: event.resourceId,
    unitId: event.unitId,
    unitVersion: event.unitVersion,
    quantityPerSecond: event.quantity,
    openedAt: event.openedAt ?? event.occurredAt,
    windowSeconds: event.windowSeconds,
    currency: event.currency,
    priceBookId: event.priceBookId,
    priceBookVersion: event.priceBookVersion,
    unitPrice: event.unitPrice,
    basePerUnit: event.basePerUnit,
    openedEventId: event.eventId,
  };
}

function pointLine(event: RatableEvent): RatedLine {
  return {
    lineKey: `event:${event.eventId}`,
    kind: 'point',
    eventId: event.eventId,
    usageId: event.usageId,
    windowIndex: null,
    windowStart: null,
    windowEnd: null,
    organizationId: event.organizationId,
    departmentId: event.departmentId,
    projectId: event.projectId,
    apiKeyId: event.apiKeyId,
    product: event.product,
    resourceType: event.resourceType,
    resourceId: event.resourceId,
    unitId: event.unitId,
    unitVersion: event.unitVersion,
    quantity: event.quantity,
    currency: event.currency,
    priceBookId: event.priceBookId,
    priceBookVersion: event.priceBookVersion,
    unitPrice: event.unitPrice,
    exactUnits: exactUnitsOf(event.quantity, event.unitPrice, event.basePerUnit),
    period: periodOf(event.occurredAt),
    occurredAt: event.occurredAt,
  };
}

/** A window's line, priced with the interval's snapshot and posted in the month the window starts in. */
function windowLine(interval: IntervalRecord, index: number, kind: Exclude<UsageLineKind, 'point'>, quantity: bigint, eventId: string): RatedLine {
  const { start, end } = windowSpan(interval, index);
  return {
    lineKey: kind === 'window' ? `window:${interval.usageId}:${index}` : `window:${interval.usageId}:${index}:close`,
    kind,
    eventId,
    usageId: interval.usageId,
    windowIndex: index,
    windowStart: start,
    windowEnd: end,
    organizationId: interval.organizationId,
    departmentId: interval.departmentId,
    projectId: interval.projectId,
    apiKeyId: interval.apiKeyId,
    product: interval.product,
    resourceType: interval.resourceType,
    resourceId: interval.resourceId,
    unitId: interval.unitId,
    unitVersion: interval.unitVersion,
    quantity,
    currency: interval.currency,
    priceBookId: interval.priceBookId,
    priceBookVersion: interval.priceBookVersion,
    unitPrice: interval.unitPrice,
    exactUnits: exactUnitsOf(quantity, interval.unitPrice, interval.basePerUnit),
    period: periodOf(start),
    occurredAt: start,
  };
}

/** The lines summed per hourly rollup row, so one statement adds to each row once. */
function rollupsOf(lines: readonly RatedLine[]): RollupDelta[] {
  const rollups = new Map<string, RollupDelta>();
  for (const line of lines) {
    const hour = new Date(Math.floor(line.occurredAt.getTime() / HOUR_MS) * HOUR_MS);
    const apiKeyId = line.apiKeyId ?? '';
    const key = JSON.stringify([
      hour.getTime(),
      line.organizationId,
      line.departmentId,
      line.projectId,
      apiKeyId,
      line.product,
      line.resourceType,
      line.resourceId,
      line.unitId,
      line.unitVersion,
      line.priceBookVersion,
      line.currency,
    ]);
    const rollup = rollups.get(key);
    if (rollup) {
      rollup.lines += 1n;
      rollup.quantity += line.quantity;
      rollup.exactUnits += line.exactUnits;
    } else {
      rollups.set(key, {
        hour,
        organizationId: line.organizationId,
        departmentId: line.departmentId,
        projectId: line.projectId,
        apiKeyId,
        product: line.product,
        resourceType: line.resourceType,
        resourceId: line.resourceId,
        unitId: line.unitId,
        unitVersion: line.unitVersion,
        priceBookVersion: line.priceBookVersion,
        currency: line.currency,
        lines: 1n,
        quantity: line.quantity,
        exactUnits: line.exactUnits,
      });
    }
  }
  return [...rollups.values()];
}
