import type { Queryable } from '@aifactory/events';

/** An account whose read-model row disagrees with the sums of its transfers; amounts are decimal strings. */
export interface AccountSumsRow {
  id: string;
  kind: string;
  organization_id: string | null;
  currency: string;
  expected_debits: string;
  expected_credits: string;
  recorded_debits: string;
  recorded_credits: string;
}

/** An organization's funds row beside what its accounts' transfers and its pending reservations add up to. */
export interface FundsSumsRow {
  organization_id: string;
  paid_accounts: string[] | null;
  promotional_accounts: string[] | null;
  expected_paid: string;
  recorded_paid: string;
  expected_promotional: string;
  recorded_promotional: string;
  expected_reserved: string;
  recorded_reserved: string;
}

/** A budget pool's row for a month beside its spend transfers and pending reservations. */
export interface BudgetSumsRow {
  pool_level: string;
  pool_id: string;
  period: string;
  organization_id: string;
  expected_spent: string;
  recorded_spent: string;
  expected_reserved: string;
  recorded_reserved: string;
}

export interface LedgerCheckRow {
  id: string;
  trigger: string;
  ok: boolean;
  mismatches: unknown;
  started_at: Date;
  finished_at: Date;
}

/** The organization accounts whose balance is spendable, and the account spend goes to. */
const SPENDABLE = `('customer_balance', 'promotional_credit')`;

/**
 * The balance check's SQL: every query recomputes from the transfers (and,
 * for holds, the pending reservations) and returns only the rows where the
 * read model says otherwise, so a clean ledger returns nothing. Run them in
 * one REPEATABLE READ transaction: they must all see the same snapshot.
 */
export class LedgerCheckStore {
  /** The snapshot's time: the instant the check's verdict is true as of. */
  async snapshotTime(db: Queryable): Promise<Date> {
    const { rows } = await db.query<{ at: Date }>('SELECT statement_timestamp() AS at');
    return rows[0]!.at;
  }

  /** Accounts whose account_balances rows (summed over shards) differ from their transfers' debits or credits. */
  async accountMismatches(db: Queryable): Promise<AccountSumsRow[]> {
    const { rows } = await db.query<AccountSumsRow>(
      `WITH moved AS (
         SELECT debit_account_id AS account_id, amount AS debits, 0::bigint AS credits FROM transfers
         UNION ALL
         SELECT credit_account_id, 0, amount FROM transfers
       ), expected AS (
         SELECT account_id, sum(debits) AS debits, sum(credits) AS credits FROM moved GROUP BY account_id
       ), recorded AS (
         SELECT account_id, sum(debits_posted) AS debits, sum(credits_posted) AS credits FROM account_balances GROUP BY account_id
       )
       SELECT a.id, a.kind::text AS kind, a.organization_id, a.currency,
              coalesce(e.debits, 0)::text AS expected_debits, coalesce(e.credits, 0)::text AS expected_credits,
              coalesce(r.debits, 0)::text AS recorded_debits, coalesce(r.credits, 0)::text AS recorded_credits
       FROM accounts a
       LEFT JOIN expected e ON e.account_id = a.id
       LEFT JOIN recorded r ON r.account_id = a.id
       WHERE coalesce(e.debits, 0) <> coalesce(r.debits, 0) OR coalesce(e.credits, 0) <> coalesce(r.credits, 0)
       ORDER BY a.organization_id NULLS FIRST, a.kind, a.id`,
    );
    return rows;
  }

  /**
   * Organizations whose funds row differs from the truth: paid and
   * promotional are the balances (credits minus debits) of their customer
   * balance and promotional credit accounts, reserved the sum of their
   * pending reservations. An organization with accounts but no funds row
   * counts as zeros, so money moved on it without a row shows.
   */
  async fundsMismatches(db: Queryable): Promise<FundsSumsRow[]> {
    const { rows } = await db.query<FundsSumsRow>(
      `WITH net AS (
         SELECT account_id, sum(amount) AS balance FROM (
           SELECT credit_account_id AS account_id, amount FROM transfers
           UNION ALL
           SELECT debit_account_id, -amount FROM transfers
         ) moved GROUP BY account_id
       ), expected AS (
         SELECT a.organization_id,
                coalesce(sum(n.balance) FILTER (WHERE a.kind::text = 'customer_balance'), 0) AS paid,
                coalesce(sum(n.balance) FILTER (WHERE a.kind::text = 'promotional_credit'), 0) AS promotional,
                array_agg(a.id::text ORDER BY a.id) FILTER (WHERE a.kind::text = 'customer_balance') AS paid_accounts,
                array_agg(a.id::text ORDER BY a.id) FILTER (WHERE a.kind::text = 'promotional_credit') AS promotional_accounts
         FROM accounts a LEFT JOIN net n ON n.account_id = a.id
         WHERE a.organization_id IS NOT NULL
         GROUP BY a.organization_id
       ), holds AS (
         SELECT organization_id, sum(amount) AS reserved FROM reservations WHERE status = 'pending' GROUP BY organization_id
       ), joined AS (
         SELECT coalesce(f.organization_id, e.organization_id) AS organization_id,
                e.paid_accounts, e.promotional_accounts,
                coalesce(e.paid, 0) AS expected_paid, coalesce(f.paid, 0) AS recorded_paid,
                coalesce(e.promotional, 0) AS expected_promotional, coalesce(f.promotional, 0) AS recorded_promotional,
                coalesce(f.reserved, 0) AS recorded_reserved
         FROM organization_funds f FULL JOIN expected e ON e.organization_id = f.organization_id
       ), complete AS (
         SELECT coalesce(j.organization_id, h.organization_id) AS organization_id,
                j.paid_accounts, j.promotional_accounts,
                coalesce(j.expected_paid, 0) AS expected_paid, coalesce(j.recorded_paid, 0) AS recorded_paid,
                coalesce(j.expected_promotional, 0) AS expected_promotional, coalesce(j.recorded_promotional, 0) AS recorded_promotional,
                coalesce(h.reserved, 0) AS expected_reserved, coalesce(j.recorded_reserved, 0) AS recorded_reserved
         FROM joined j FULL JOIN holds h ON h.organization_id = j.organization_id
       )
       SELECT organization_id, paid_accounts, promotional_accounts,
              expected_paid::text, recorded_paid::text, expected_promotional::text, recorded_promotional::text,
              expected_reserved::text, recorded_reserved::text
       FROM complete
       WHERE expected_paid <> recorded_paid OR expected_promotional <> recorded_promotional OR expected_reserved <> recorded_reserved
       ORDER BY organization_id`,
    );
    return rows;
  }

  /**
   * Budget pools (organization, department, project) and months whose
   * budget_spend row differs from the truth: spent is the spend transfers
   * (spendable account to revenue, less the reverse) of the pool's postings
   * in that UTC month, reserved the pool's pending reservations of that period.
   */
  async budgetMismatches(db: Queryable): Promise<BudgetSumsRow[]> {
    const { rows } = await db.query<BudgetSumsRow>(
      `WITH spend AS (
         SELECT t.organization_id, t.department_id, t.project_id,
                date_trunc('month', t.posted_at AT TIME ZONE 'UTC')::date AS period,
                sum(CASE WHEN c.kind::text = 'revenue' THEN t.amount ELSE -t.amount END) AS spent
         FROM transfers t
         JOIN accounts d ON d.id = t.debit_account_id
         JOIN accounts c ON c.id = t.credit_account_id
         WHERE t.organization_id IS NOT NULL
           AND ((d.kind::text IN ${SPENDABLE} AND c.kind::text = 'revenue') OR (d.kind::text = 'revenue' AND c.kind::text IN ${SPENDABLE}))
         GROUP BY 1, 2, 3, 4
       ), holds AS (
         SELECT organization_id, department_id, project_id, period, sum(amount) AS reserved
         FROM reservations WHERE status = 'pending' GROUP BY 1, 2, 3, 4
       ), facts AS (
         SELECT organization_id, department_id, project_id, period, spent, 0::numeric AS reserved FROM spend
         UNION ALL
         SELECT organization_id, department_id, project_id, period, 0::numeric, reserved FROM holds
       ), pools AS (
         SELECT 'organization'::text AS pool_level, organization_id AS pool_id, organization_id, period, spent, reserved FROM facts
         UNION ALL
         SELECT 'department', department_id, organization_id, period, spent, reserved FROM facts WHERE department_id IS NOT NULL
         UNION ALL
         SELECT 'project', project_id, organization_id, period, spent, reserved FROM facts WHERE project_id IS NOT NULL
       ), expected AS (
         SELECT pool_level, pool_id, period, organization_id, sum(spent) AS spent, sum(reserved) AS reserved
         FROM pools GROUP BY 1, 2, 3, 4
       ), compared AS (
         SELECT coalesce(b.pool_level, e.pool_level) AS pool_level, coalesce(b.pool_id, e.pool_id) AS pool_id,
                coalesce(b.period, e.period) AS period, coalesce(b.organization_id, e.organization_id) AS organization_id,
                coalesce(e.spent, 0) AS expected_spent, coalesce(b.spent, 0) AS recorded_spent,
                coalesce(e.reserved, 0) AS expected_reserved, coalesce(b.reserved, 0) AS recorded_reserved
         FROM budget_spend b
         FULL JOIN expected e ON e.pool_level = b.pool_level AND e.pool_id = b.pool_id AND e.period = b.period
       )
       SELECT pool_level, pool_id, period::text AS period, organization_id,
              expected_spent::text, recorded_spent::text, expected_reserved::text, recorded_reserved::text
       FROM compared
       WHERE expected_spent <> recorded_spent OR expected_reserved <> recorded_reserved
       ORDER BY organization_id, period, pool_level, pool_id`,
    );
    return rows;
  }

  async record(db: Queryable, check: { trigger: string; ok: boolean; mismatches: unknown; startedAt: Date }): Promise<LedgerCheckRow> {
    const { rows } = await db.query<LedgerCheckRow>(
      `INSERT INTO ledger_checks (trigger, ok, mismatches, started_at) VALUES ($1, $2, $3::jsonb, $4)
       RETURNING id::text, trigger, ok, mismatches, started_at, finished_at`,
      [check.trigger, check.ok, JSON.stringify(check.mismatches), check.startedAt],
    );
    return rows[0]!;
  }

  /** Whether any check (scheduled or billing:verify) started less than `seconds` ago, by the database's clock. */
  async checkedWithin(db: Queryable, seconds: number): Promise<boolean> {
    const { rowCount } = await db.query('SELECT 1 FROM ledger_checks WHERE started_at > now() - make_interval(secs => $1) LIMIT 1', [seconds]);
    return (rowCount ?? 0) > 0;
  }

  /** Whether a check of a later snapshot than this one has been recorded: its verdict, not this one, decides the status. */
  async newerThan(db: Queryable, check: { id: string; startedAt: Date }): Promise<boolean> {
    const { rowCount } = await db.query('SELECT 1 FROM ledger_checks WHERE (started_at, id) > ($1, $2::bigint) LIMIT 1', [check.startedAt, check.id]);
    return (rowCount ?? 0) > 0;
  }

  /**
   * What the metrics and balance reads need: when the balances were last
   * proven (the snapshot of the latest clean check), the seconds since then
   * by the database's clock (since the first check when none was clean yet),
   * and the mismatch count of the check of the latest snapshot (the one that
   * decides the status, as overlapping checks may finish out of order).
   */
  async verification(db: Queryable): Promise<{ verifiedAt: Date | null; unverifiedSeconds: number | null; latestMismatches: number | null }> {
    const { rows } = await db.query<{ verified_at: Date | null; unverified_seconds: number | null; latest_mismatches: number | null }>(
      `WITH clean AS (SELECT started_at FROM ledger_checks WHERE ok ORDER BY started_at DESC, id DESC LIMIT 1),
            latest AS (SELECT mismatches FROM ledger_checks ORDER BY started_at DESC, id DESC LIMIT 1),
            first AS (SELECT started_at FROM ledger_checks ORDER BY started_at, id LIMIT 1)
       SELECT (SELECT started_at FROM clean) AS verified_at,
              extract(epoch FROM now() - coalesce((SELECT started_at FROM clean), (SELECT started_at FROM first)))::float8 AS unverified_seconds,
              (SELECT jsonb_array_length(mismatches) FROM latest) AS latest_mismatches`,
    );
    const row = rows[0]!;
    return { verifiedAt: row.verified_at, unverifiedSeconds: row.unverified_seconds, latestMismatches: row.latest_mismatches };
  }
}
