import type pg from 'pg';
import { UsagePeriodCloseStore, type OpenChain, type PeriodClose } from '../data/usage-period-close-store.js';
import { inTransaction } from '../data/transactions.js';
import { EXACT_UNITS_PER_MINOR } from './rating-amounts.js';
import type { UsagePolicy } from './usage-ingestion.js';

/** Rating lag allowed after the late-usage limit has passed, before a month is closed. */
export const CLOSE_GRACE_MS = 24 * 60 * 60 * 1000;
const CHAINS_PER_PAGE = 500;

/**
 * Closes remainder chains (ARCHITECTURE.md, Decisions: Money): each posting
 * posted floor(exact sum) minus what was posted before, so a month's chain
 * ends with a remainder below one minor unit. Once no usage of that month can
 * be accepted any more (its end plus the project's `billing.usage.late_limit`
 * and a day for rating), none of it waits for rating and no interval open
 * since then can still bill windows into it, the remainder is
 * dropped: recorded in usage_period_closes, never posted.
 */
export class UsagePeriodCloses {
  private readonly store = new UsagePeriodCloseStore();

  constructor(
    private readonly pool: pg.Pool,
    private readonly policy: Pick<UsagePolicy, 'lateLimitMs'>,
  ) {}

  async closeDue(now: Date): Promise<PeriodClose[]> {
    const month = `${now.toISOString().slice(0, 7)}-01`;
    const closed: PeriodClose[] = [];
    // Every open chain of past months, page by page: chains not due yet must not hide later ones.
    for (let after: OpenChain | null = null; ; ) {
      const page = await this.store.openChains(this.pool, month, after, CHAINS_PER_PAGE);
      for (const chain of page) {
        const close = await this.closeIfDue(chain, now);
        if (close) closed.push(close);
      }
      if (page.length < CHAINS_PER_PAGE) return closed;
      after = page[page.length - 1]!;
    }
  }

  private async closeIfDue(chain: OpenChain, now: Date): Promise<PeriodClose | null> {
    const target = { projectId: chain.projectId, ...(chain.departmentId ? { departmentId: chain.departmentId } : {}) };
    const closesAt = nextMonth(chain.period).getTime() + this.policy.lateLimitMs(chain.organizationId, target) + CLOSE_GRACE_MS;
    if (now.getTime() < closesAt) return null;
    return inTransaction(this.pool, async (tx) => {
      await this.store.lockOrganization(tx, chain.organizationId);
      const state = await this.store.chainState(tx, chain);
      // An interval still open since then may bill windows (or take them back at its close) in this month.
      if (!state || state.unrated > 0 || state.openIntervals > 0) return null;
      const record: PeriodClose = {
        ...chain,
        exactUnits: state.exactUnits,
        posted: state.posted,
        droppedUnits: state.exactUnits - state.posted * EXACT_UNITS_PER_MINOR,
      };
      return (await this.store.insertClose(tx, record)) ? record : null;
    });
  }
}

function nextMonth(period: string): Date {
  const start = new Date(`${period}T00:00:00.000Z`);
  return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
}
