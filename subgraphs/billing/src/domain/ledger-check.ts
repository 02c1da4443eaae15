import type pg from 'pg';
import type { Queryable } from '@aifactory/events';
import { LedgerCheckStore } from '../data/ledger-checks.js';
import { bigintOf } from './money.js';

/** Who ran a check: the scheduled worker, or an operator's `npm run billing:verify`. */
export type LedgerCheckTrigger = 'scheduled' | 'verify';

interface Amounts {
  debits: string;
  credits: string;
  /** Credits minus debits. */
  balance: string;
}

/**
 * One place where the balance read model disagrees with the transfers it is
 * kept from, named so an operator can go straight to the row: the account
 * (id, kind, organization), the organization, or the budget pool and month.
 * Amounts are decimal strings of minor units, as every report carries them.
 */
export type LedgerMismatch =
  | {
      kind: 'account_balance';
      accountId: string;
      accountKind: string;
      organizationId: string | null;
      currency: string;
      /** From the transfers. */
      expected: Amounts;
      /** From account_balances, summed over its shards. */
      recorded: Amounts;
    }
  | {
      kind: 'organization_funds';
      organizationId: string;
      field: 'paid' | 'promotional' | 'reserved';
      /** The accounts `paid` or `promotional` is the balance of; none for `reserved` (pending reservations). */
      accountIds: string[];
      expected: string;
      recorded: string;
    }
  | {
      kind: 'budget_spend';
      organizationId: string;
      poolLevel: string;
      poolId: string;
      /** The month, as its first day (`2026-11-01`). */
      period: string;
      field: 'spent' | 'reserved';
      expected: string;
      recorded: string;
    };

export interface LedgerCheckResult {
  /** The ledger_checks row that records this check. */
  id: string;
  trigger: LedgerCheckTrigger;
  ok: boolean;
  /** The snapshot's time: the verdict is true as of this instant. */
  startedAt: Date;
  finishedAt: Date;
  mismatches: LedgerMismatch[];
}

const store = new LedgerCheckStore();

/**
 * Proves the balance read model against the ledger (ARCHITECTURE.md,
 * Decisions: Money: "a check proves it equals their sums"): every account's
 * account_balances rows against its transfers, every organization's funds
 * row against its accounts and pending reservations, every budget pool's
 * month against its spend transfers and pending reservations. All of it is
 * read in one REPEATABLE READ READ ONLY transaction, so postings committing
 * meanwhile cannot make a consistent ledger look inconsistent. The verdict
 * is recorded as a ledger_checks row.
 */
export async function checkLedger(db: pg.Pool | pg.PoolClient, options: { trigger: LedgerCheckTrigger }): Promise<LedgerCheckResult> {
  // On a connection the caller holds (the scheduled check's, which carries its advisory lock), else one of the pool's:
  // never both at once, so a pool of one connection is enough.
  const own = !('release' in db);
  const client = own ? await db.connect() : db;
  let broken = false;
  let startedAt: Date;
  let mismatches: LedgerMismatch[];
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      // The first statement takes the snapshot; its time is what the verdict is true as of.
      startedAt = await store.snapshotTime(client);
      mismatches = [
        ...(await store.accountMismatches(client)).map(
          (row): LedgerMismatch => ({
            kind: 'account_balance',
            accountId: row.id,
            accountKind: row.kind,
            organizationId: row.organization_id,
            currency: row.currency.trim(),
            expected: amounts(row.expected_debits, row.expected_credits),
            recorded: amounts(row.recorded_debits, row.recorded_credits),
          }),
        ),
        ...(await store.fundsMismatches(client)).flatMap((row) => {
          const fields: LedgerMismatch[] = [];
          const add = (field: 'paid' | 'promotional' | 'reserved', accountIds: string[] | null, expected: string, recorded: string) => {
            if (expected !== recorded) {
              fields.push({ kind: 'organization_funds', organizationId: row.organization_id, field, accountIds: accountIds ?? [], expected, recorded });
            }
          };
          add('paid', row.paid_accounts, row.expected_paid, row.recorded_paid);
          add('promotional', row.promotional_accounts, row.expected_promotional, row.recorded_promotional);
          add('reserved', [], row.expected_reserved, row.recorded_reserved);
          return fields;
        }),
        ...(await store.budgetMismatches(client)).flatMap((row) => {
          const fields: LedgerMismatch[] = [];
          const pool = { organizationId: row.organization_id, poolLevel: row.pool_level, poolId: row.pool_id, period: row.period };
          if (row.expected_spent !== row.recorded_spent) {
            fields.push({ kind: 'budget_spend', ...pool, field: 'spent', expected: row.expected_spent, recorded: row.recorded_spent });
          }
          if (row.expected_reserved !== row.recorded_reserved) {
            fields.push({ kind: 'budget_spend', ...pool, field: 'reserved', expected: row.expected_reserved, recorded: row.recorded_reserved });
          }
          return fields;
        }),
      ];
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        // The connection itself failed: the pool must not hand it out again.
        broken = true;
      });
      throw error;
    }
  } finally {
    if (own) client.release(broken);
  }
  if (broken) throw new Error('the ledger check lost its connection');
  const recorded = await store.record(db, { trigger: options.trigger, ok: mismatches.length === 0, mismatches, startedAt });
  return { id: recorded.id, trigger: options.trigger, ok: recorded.ok, startedAt: recorded.started_at, finishedAt: recorded.finished_at, mismatches };
}

export interface LedgerVerification {
  /** When the balances were last proven equal to the ledger: the latest clean check's snapshot; null before any clean check. */
  verifiedAt: Date | null;
  /** Seconds since then by the database's clock (since the first check while none was clean); null before any check. */
  unverifiedSeconds: number | null;
  /** The latest check's mismatch count; null before any check. */
  latestMismatches: number | null;
}

/** Where the proof stands, from the recorded checks of every instance and billing:verify run. */
export function ledgerVerification(db: Queryable): Promise<LedgerVerification> {
  return store.verification(db);
}

/** One line for an operator, naming where to look. */
export function describeMismatch(mismatch: LedgerMismatch): string {
  switch (mismatch.kind) {
    case 'account_balance': {
      const owner = mismatch.organizationId === null ? 'platform account' : `account of organization ${mismatch.organizationId}`;
      return (
        `account ${mismatch.accountId} (${mismatch.accountKind} ${owner}, ${mismatch.currency}): ` +
        `account_balances say debits ${mismatch.recorded.debits}, credits ${mismatch.recorded.credits} (balance ${mismatch.recorded.balance}); ` +
        `its transfers say debits ${mismatch.expected.debits}, credits ${mismatch.expected.credits} (balance ${mismatch.expected.balance})`
      );
    }
    case 'organization_funds': {
      const source = mismatch.field === 'reserved' ? 'its pending reservations' : `account ${mismatch.accountIds.join(', ') || '(none)'}`;
      return `organization ${mismatch.organizationId}: organization_funds.${mismatch.field} is ${mismatch.recorded}, ${source} say ${mismatch.expected}`;
    }
    case 'budget_spend': {
      const source = mismatch.field === 'spent' ? 'its spend transfers' : 'its pending reservations';
      return (
        `budget pool ${mismatch.poolLevel} ${mismatch.poolId} of organization ${mismatch.organizationId}, ${mismatch.period}: ` +
        `budget_spend.${mismatch.field} is ${mismatch.recorded}, ${source} say ${mismatch.expected}`
      );
    }
    default: {
      const unknown: never = mismatch;
      return `mismatch ${JSON.stringify(unknown)}`;
    }
  }
}

function amounts(debits: string, credits: string): Amounts {
  return { debits, credits, balance: (bigintOf(credits) - bigintOf(debits)).toString() };
}
