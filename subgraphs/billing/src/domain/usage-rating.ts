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
  type MarkedBatch,
  type NewChainStep,
  type NewInterval,
  type RatableEvent,
  type RatedLine,
  type UsageLineKind,
} from '../data/usage-rating-store.js';
import type { BalanceAlerts } from './balance-alerts.js';
import { closeChanges, dueWindows, fullWindowQuantity, windowSpan } from './interval-windows.js';
import type { ChargeSpec, Ledger, PostingSpec } from './ledger.js';
import { periodOf } from './money.js';
import { chainStep, exactUnitsOf } from './rating-amounts.js';

export const RATING_ACTOR: Actor = { type: 'system', id: 'billing.usage-rating' };
/** Windows billed per interval in one transaction: a long outage's backlog is billed over several, none of them huge. */
const WINDOWS_PER_TRANSACTION = 1_000;

export interface UsageRatingOptions {
  /**
   * Where the thresholds usage brought are recorded before its postings: the
   * ledger's funds observer (alertingLedger) checks the alerts at them.
   */
  balanceAlerts: Pick<BalanceAlerts, 'recordThresholdsIn'>;
  clock?: Clock;
}

export interface BatchRating {
  batchId: string;
  /** Events this call rated (claimed), over every organization of the batch and of the newer batches it took along. */
  events: number;
  lines: number;
  /** When this call marked the batch rated; null when it had been marked before. */
  marked: { receivedAt: Date; ratedAt: Date } | null;
  /** Newer batches this call rated along with it and marked rated (see `rateBatch`'s `newer`). */
  newerMarked: MarkedBatch[];
}

export interface AccrualRound {
  organizations: number;
  lines: number;
  /** Organizations whose windows could not be billed this round; the next round tries again. */
  failed: { organizationId: string; error: unknown }[];
}

/**
 * A batch's usage not rated yet, as read before its funds locks are taken
 * (a batch is written once: only whether its events are rated changes).
 */
interface UnratedBatch {
  batchId: string;
  /** Organizations with unrated usage in the batch, in id order. */
  organizationIds: string[];
  /** Whether any of it is a closing: closings are read under the locks, since whether one can be rated depends on its interval. */
  closings: boolean;
  /** Its unrated point and opening events, oldest first. */
  events: RatableEvent[];
}

/** What one rating transaction did. */
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
 * Every change to an organization's usage happens in a transaction that
 * first locks the organization's funds row, the ledger's first lock, so
 * rating runs of one organization (batches, accrual, a repeat after a crash)
 * queue there and a chain's steps never race; an event is rated by the
 * transaction whose usage_ratings row for it commits, and only once.
 *
 * A batch is rated in one transaction for all its organizations: rating is
 * bound by round trips to Postgres, and a transaction per organization cost
 * a score of statements for each of the batch's organizations where one
 * transaction costs about as many for all of them.
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
   * Rates what is unrated in an ingested batch, then marks the batch rated;
   * with `newer`, up to that many batches received after it and not rated
   * yet too (the rating queue's backlog: their jobs then find nothing left),
   * skipping those another rater has taken along. All their organizations
   * are rated in one transaction that locks their funds rows in id order
   * (the ledger's lock order, so raters of batches sharing organizations
   * queue rather than deadlock). Should that fail, the batch is rated again
   * without the newer ones (whose own jobs report their failures), and then,
   * should that fail too, each of its organizations in a transaction of its
   * own, so an organization that fails does not hold up the others; the
   * batch then stays unrated and the call throws, so the job is retried.
   * Safe to repeat and to run beside another rater of the same batches: what
   * either rated is skipped.
   */
  async rateBatch(batchId: string, options: { newer?: number } = {}): Promise<BatchRating> {
    const newer = options.newer ?? 0;
    const rated =
      (await this.rateTogether(batchId, newer)) ?? (newer > 0 ? await this.rateTogether(batchId, 0) : undefined) ?? (await this.rateEachOrganization(batchId));
    const rating: BatchRating = { batchId, events: rated.events, lines: rated.lines, marked: null, newerMarked: [] };
    for (const batch of await this.store.markBatchesRated(this.pool, [batchId, ...rated.batchIds])) {
      if (batch.batchId === batchId) rating.marked = { receivedAt: batch.receivedAt, ratedAt: batch.ratedAt };
      else rating.newerMarked.push(batch);
    }
    return rating;
  }

  /**
   * The batch, and up to `newer` newer ones, in one transaction; undefined
   * when it failed. Its error is not lost: the organization that caused it
   * fails again when rated alone, and that error is the one reported (or,
   * when it was a newer batch's, when that batch's own job rates it).
   */
  private async rateTogether(batchId: string, newer: number): Promise<Rated & { batchIds: string[] } | undefined> {
    try {
      return await inTransaction(this.pool, async (tx) => {
        const batches = byBatch(await this.store.unratedUsage(tx, batchId, newer));
        const organizationIds = [...new Set(batches.flatMap((batch) => batch.organizationIds))].sort();
        const rated = organizationIds.length === 0 ? { events: 0, lines: 0 } : await this.rateOrganizationsIn(tx, batches, organizationIds);
        return { ...rated, batchIds: batches.map((batch) => batch.batchId) };
      });
    } catch {
      return undefined;
    }
  }

  /** The batch's organizations each in a transaction of its own; throws what failed once every one was tried. */
  private async rateEachOrganization(batchId: string): Promise<Rated & { batchIds: string[] }> {
    const rated = { events: 0, lines: 0, batchIds: [batchId] };
    const errors: unknown[] = [];
    for (const batch of byBatch(await this.store.unratedUsage(this.pool, batchId, 0))) {
      for (const organizationId of batch.organizationIds) {
        try {
          const alone = await inTransaction(this.pool, (tx) => this.rateOrganizationsIn(tx, [batch], [organizationId]));
          rated.events += alone.events;
          rated.lines += alone.lines;
        } catch (error) {
          errors.push(error);
        }
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `rating failed for ${errors.length} organizations of usage batch ${batchId}`);
    return rated;
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

  /**
   * A batch whose rating job used up its attempts (a dead letter): no longer
   * swept or taken along by other jobs, so the failed batches cannot crowd
   * out newer ones; `billing:reconcile` rates it once the cause is fixed.
   */
  markBatchFailed(batchId: string): Promise<void> {
    return this.store.markBatchFailed(this.pool, batchId);
  }

  /** Batches received at or before `receivedBefore` and never marked rated: the sweeper enqueues them again. */
  unratedBatches(receivedBefore: Date, limit: number): Promise<string[]> {
    return this.store.unratedBatches(this.pool, receivedBefore, limit);
  }

  /**
   * Rates the organizations' unrated usage of the batches (and closings that
   * waited for an opening of theirs) under their funds locks: leaves out
   * what another rater rated since the batches were read, builds the lines,
   * posts them, and records the events rated with the chain step each went
   * into, all in the caller's transaction.
   */
  private async rateOrganizationsIn(tx: Tx, batches: readonly UnratedBatch[], organizationIds: readonly string[]): Promise<Rated> {
    const now = this.clock.now();
    const currencies = await this.lockFunds(tx, organizationIds);
    const batchIds = batches.map((batch) => batch.batchId);
    const candidates = batches.flatMap((batch) => batch.events.filter((event) => currencies.has(event.organizationId))).sort(byOccurrence);
    // Under the locks no other rater of these organizations is at work: what is not rated now is this transaction's to rate.
    const rated = await this.store.ratedAmong(tx, candidates.map((event) => event.eventId));
    const claimed = candidates.filter((event) => !rated.has(event.eventId));
    const openings = claimed.filter((event) => event.kind === 'opened');
    await this.store.insertIntervals(tx, openings.map(intervalSnapshot));
    const openedUsageIds = [...new Set(openings.map((event) => event.usageId))];
    // Closings are looked for only where there can be any: in the batches, or waiting for one of their openings.
    const closings =
      batches.some((batch) => batch.closings) || openedUsageIds.length > 0 ? await this.store.closingsToRate(tx, organizationIds, batchIds, openedUsageIds) : [];
    const events = [...claimed, ...closings];
    if (events.length === 0) return { events: 0, lines: 0 };

    const lines = claimed.filter((event) => event.kind === 'recorded').map(pointLine);
    const intervals = new Map(
      (await this.store.intervals(tx, organizationIds, [...new Set([...openings, ...closings].map((event) => event.usageId))])).map((interval) => [
        interval.usageId,
        interval,
      ]),
    );
    lines.push(...(await this.close(tx, intervals, closings)));
    // Windows that ended before the opening was rated (late or backed-up usage) are billed now, as the opening's lines.
    const openedBy = new Map(openings.map((event) => [event.usageId, event.eventId]));
    const stillOpen = [...intervals.values()].filter((interval) => interval.closedAt === null && openedBy.has(interval.usageId));
    lines.push(...(await this.billDue(tx, stillOpen, now, (interval) => openedBy.get(interval.usageId)!)).lines);

    // Each organization's threshold: the highest its events of the batch were ingested with.
    const thresholds = new Map<string, bigint>();
    for (const event of events) {
      const threshold = event.lowBalanceThreshold;
      const highest = thresholds.get(event.organizationId);
      if (threshold !== null && (highest === undefined || threshold > highest)) thresholds.set(event.organizationId, threshold);
    }
    const written = await this.post(tx, currencies, lines, thresholds, events);
    return { events: events.length, lines: written };
  }

  private async accrueOrganizationIn(tx: Tx, organizationId: string, now: Date): Promise<{ lines: number; more: boolean }> {
    const currencies = await this.lockFunds(tx, [organizationId]);
    const due = await this.store.dueIntervals(tx, organizationId, now);
    const { lines, more } = await this.billDue(tx, due, now, (interval) => interval.openedEventId);
    return { lines: await this.post(tx, currencies, lines, new Map(), []), more };
  }

  /** The ledger's first lock, on every organization's funds row in id order; returns each organization's currency. */
  private async lockFunds(tx: Tx, organizationIds: readonly string[]): Promise<Map<string, string>> {
    const funds = await this.funds.lockFunds(tx, organizationIds);
    const currencies = new Map<string, string>();
    for (const organizationId of organizationIds) {
      const locked = funds.get(organizationId);
      if (!locked) throw new AppError('BILLING_ORGANIZATION_UNKNOWN', 'Billing has no accounts for this organization yet', { details: { organizationId } });
      currencies.set(organizationId, locked.currency);
    }
    return currencies;
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
   * fall in, the hourly rollups and `events` as rated (each with the chain
   * step of its first line), records the thresholds its usage brought (the
   * ledger's funds observer checks the alerts at them), then the ledger
   * postings of the steps that moved whole minor units. `currencies` holds the
   * organizations whose funds rows this transaction locked. Returns how many
   * lines it wrote.
   */
  private async post(
    tx: Tx,
    currencies: ReadonlyMap<string, string>,
    rated: readonly RatedLine[],
    thresholds: ReadonlyMap<string, bigint>,
    events: readonly RatableEvent[],
  ): Promise<number> {
    // A point line's key is its event's, and only the transaction that records the event rated writes it: it is new.
    // A window line may have been written by an earlier run (a repeat after a crash between window and cursor).
    const existing = await this.store.existingLineKeys(tx, rated.flatMap((line) => (line.kind === 'point' ? [] : [line.lineKey])));
    const lines = rated.filter((line) => !existing.has(line.lineKey));
    for (const line of lines) {
      const currency = currencies.get(line.organizationId);
      if (currency === undefined) throw new Error(`a line of organization ${line.organizationId} was rated without its funds lock`);
      if (line.currency !== currency) {
        throw new AppError('BILLING_CURRENCY_MISMATCH', `Usage priced in ${line.currency} cannot be posted to an organization billed in ${currency}`, {
          details: { organizationId: line.organizationId, lineKey: line.lineKey, lineCurrency: line.currency, currency },
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
    const heads = new Map((await this.store.chainHeads(tx, [...chains.values()].map(([first]) => first!))).map((head) => [chainKey(head), head]));
    const steps: (NewChainStep & { departmentId: string })[] = [];
    const stepOfLine = new Map<RatedLine, string>();
    for (const [key, chainLines] of chains) {
      const { organizationId, projectId, departmentId, currency, period } = chainLines[0]!;
      const head = heads.get(key) ?? { step: 0, exactUnits: 0n, posted: 0n };
      const next = chainStep(head, chainLines.reduce((sum, line) => sum + line.exactUnits, 0n));
      const step = head.step + 1;
      const id = `usage:${organizationId}:${projectId}:${period}:${step}`;
      steps.push({ id, organizationId, projectId, departmentId, currency, period, step, ...next, lines: chainLines.length, ledgerPostingId: next.delta === 0n ? null : id });
      for (const line of chainLines) stepOfLine.set(line, id);
    }
    const stepOfEvent = new Map<string, string>();
    for (const line of lines) if (!stepOfEvent.has(line.eventId)) stepOfEvent.set(line.eventId, stepOfLine.get(line)!);
    await this.store.writeRating(tx, {
      steps,
      points: lines.flatMap((line) =>
        line.kind === 'point' ? [{ eventId: line.eventId, exactUnits: line.exactUnits, period: line.period, usagePostingId: stepOfLine.get(line)! }] : [],
      ),
      lines: lines.flatMap((line) => (line.kind === 'point' ? [] : [{ ...line, usagePostingId: stepOfLine.get(line)! }])),
      ratings: events.map((event) => ({
        eventId: event.eventId,
        batchId: event.batchId,
        organizationId: event.organizationId,
        usagePostingId: stepOfEvent.get(event.eventId) ?? null,
      })),
    });
    // The ledger's funds observer checks during the postings: it must already see the thresholds this usage brought.
    await this.options.balanceAlerts.recordThresholdsIn(tx, thresholds);
    await this.postSteps(tx, steps);
    return lines.length;
  }

  /**
   * The steps' whole minor units through the ledger, all in one call: a
   * charge (promotional credit first, then the paid balance) for a chain
   * that earned more, a credit back to the paid balance from revenue for one
   * a close took usage back from. The budgets of the chain's project and
   * department count both. A step's posting id is its own id, new like the
   * step (whose row this transaction has just written).
   */
  private async postSteps(tx: Tx, steps: readonly (NewChainStep & { departmentId: string })[]): Promise<void> {
    const charges: ChargeSpec[] = [];
    const credits: PostingSpec[] = [];
    for (const step of steps) {
      const metadata = { period: step.period, step: step.step, lines: step.lines, exactUnits: step.exactUnits.toString() };
      if (step.delta > 0n) {
        charges.push({
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
        credits.push({
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
        });
      }
    }
    if (charges.length > 0 || credits.length > 0) await this.ledger.chargeAllIn(tx, charges, credits);
  }
}

/** Unrated usage by batch, each batch's organizations in id order. */
function byBatch(events: readonly RatableEvent[]): UnratedBatch[] {
  const batches = new Map<string, UnratedBatch & { organizations: Set<string> }>();
  for (const event of events) {
    let batch = batches.get(event.batchId);
    if (!batch) batches.set(event.batchId, (batch = { batchId: event.batchId, organizationIds: [], organizations: new Set(), closings: false, events: [] }));
    batch.organizations.add(event.organizationId);
    if (event.kind === 'closed') batch.closings = true;
    else batch.events.push(event);
  }
  return [...batches.values()].map(({ organizations, ...batch }) => ({ ...batch, organizationIds: [...organizations].sort() }));
}

/** Oldest first, as rating has always gone through usage (the order a chain's lines and an organization's charges come in). */
function byOccurrence(a: RatableEvent, b: RatableEvent): number {
  return a.occurredAt.getTime() - b.occurredAt.getTime() || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0);
}

const chainKey = (chain: { organizationId: string; projectId: string; currency: string; period: string }) =>
  `${chain.organizationId}:${chain.projectId}:${chain.currency}:${chain.period}`;

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
