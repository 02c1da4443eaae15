import type pg from 'pg';
import { UsagePeriodCloseStore, type PeriodClose } from '../data/usage-period-close-store.js';
import { inTransaction } from '../data/transactions.js';
import { EXACT_UNITS_PER_MINOR } from './rating-amounts.js';
import type { UsagePolicy } from './usage-ingestion.js';

/** Rating lag allowed after the late-usage limit has passed, before a month is closed. */
export const CLOSE_GRACE_MS = 24 * 60 * 60 * 1000;
const CHAINS_PER_ROUND = 500;

/**
 * Closes remainder chains (ARCHITECTURE.md, Decisions: Money): each posting
 * posted floor(exact sum) minus what was posted before, so a month's chain
 * ends with a remainder below one minor unit. Once no usage of that month can
 * be accepted any more (its end plus the project's `billing.usage.late_limit`
 * and a day for rating) and none of it waits for rating, the remainder is
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
    for (const chain of await this.store.openChains(this.pool, month, CHAINS_PER_ROUND)) {
      const target = { projectId: chain.projectId, ...(chain.departmentId ? { departmentId: chain.departmentId } : {}) };
      const closesAt = nextMonth(chain.period).getTime() + this.policy.lateLimitMs(chain.organizationId, target) + CLOSE_GRACE_MS;
      if (now.getTime() < closesAt) continue;
      const close = await inTransaction(this.pool, async (tx) => {
        await this.store.lockOrganization(tx, chain.organizationId);
        const state = await this.store.chainState(tx, chain);
        if (!state || state.unrated > 0) return null;
        const record: PeriodClose = {
          ...chain,
          exactUnits: state.exactUnits,
          posted: state.posted,
          droppedUnits: state.exactUnits - state.posted * EXACT_UNITS_PER_MINOR,
        };
        return (await this.store.insertClose(tx, record)) ? record : null;
      });
      if (close) closed.push(close);
    }
    return closed;
  }
}

function nextMonth(period: string): Date {
  const start = new Date(`${period}T00:00:00.000Z`);
  return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
}
