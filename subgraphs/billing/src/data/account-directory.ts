import type pg from 'pg';
import { AppError } from '@aifactory/errors';
import type { Queryable } from '@aifactory/events';

export const ORGANIZATION_ACCOUNT_KINDS = ['customer_balance', 'promotional_credit', 'disputes_held'] as const;
export const PLATFORM_ACCOUNT_KINDS = ['revenue', 'payment_clearing', 'refunds', 'promotions'] as const;
export type OrganizationAccountKind = (typeof ORGANIZATION_ACCOUNT_KINDS)[number];
export type PlatformAccountKind = (typeof PLATFORM_ACCOUNT_KINDS)[number];
export type LedgerAccountKind = OrganizationAccountKind | PlatformAccountKind;

/** What never changes about an account once it exists: the ledger reads it on every posting. */
export interface AccountFacts {
  id: string;
  kind: LedgerAccountKind;
  organizationId: string | null;
  currency: string;
}

export type OrganizationAccounts = Record<OrganizationAccountKind, AccountFacts> & { currency: string };

interface AccountRow {
  id: string;
  kind: LedgerAccountKind;
  organization_id: string | null;
  currency: string;
}

const factsOf = (row: AccountRow): AccountFacts => ({
  id: row.id,
  kind: row.kind,
  organizationId: row.organization_id,
  currency: row.currency.trim(),
});

/**
 * Accounts by id, by organization and by platform kind. An account's kind,
 * organization and currency never change, so what was read once is kept for
 * the life of the process; only a miss goes to the database.
 */
export class AccountDirectory {
  private readonly byId = new Map<string, AccountFacts>();
  private readonly byOrganization = new Map<string, OrganizationAccounts>();
  private readonly platform = new Map<string, AccountFacts>();

  constructor(private readonly pool: pg.Pool) {}

  /** The accounts among `ids` that exist; unknown ids are simply absent. */
  async facts(ids: readonly string[], db: Queryable = this.pool): Promise<Map<string, AccountFacts>> {
    const missing = [...new Set(ids)].filter((id) => !this.byId.has(id));
    if (missing.length > 0) {
      const { rows } = await db.query<AccountRow>(
        'SELECT id, kind, organization_id, currency FROM accounts WHERE id = ANY($1::uuid[])',
        [missing.filter((id) => UUID.test(id))],
      );
      for (const row of rows) this.remember(factsOf(row));
    }
    const found = new Map<string, AccountFacts>();
    for (const id of ids) {
      const facts = this.byId.get(id);
      if (facts) found.set(id, facts);
    }
    return found;
  }

  /** The organization's three accounts, or undefined before billing has opened them. */
  async organization(organizationId: string, db: Queryable = this.pool): Promise<OrganizationAccounts | undefined> {
    const cached = this.byOrganization.get(organizationId);
    if (cached) return cached;
    if (!UUID.test(organizationId)) return undefined;
    const { rows } = await db.query<AccountRow>(
      'SELECT id, kind, organization_id, currency FROM accounts WHERE organization_id = $1 ORDER BY created_at, id',
      [organizationId],
    );
    const kinds = new Map<string, AccountFacts>();
    // One billing currency per organization: the oldest account of a kind is the one.
    for (const row of rows) if (!kinds.has(row.kind)) kinds.set(row.kind, factsOf(row));
    if (!ORGANIZATION_ACCOUNT_KINDS.every((kind) => kinds.has(kind))) return undefined;
    const accounts = {
      customer_balance: kinds.get('customer_balance')!,
      promotional_credit: kinds.get('promotional_credit')!,
      disputes_held: kinds.get('disputes_held')!,
      currency: kinds.get('customer_balance')!.currency,
    };
    for (const kind of ORGANIZATION_ACCOUNT_KINDS) this.remember(accounts[kind]);
    this.byOrganization.set(organizationId, accounts);
    return accounts;
  }

  /**
   * The platform account of a kind in a currency, read on the caller's
   * connection (inside a transaction, pass it: a transaction must not wait on
   * the pool). Billing opens all four with an organization's accounts
   * (AccountStore.ensureAccounts), so one is missing only before any
   * organization in that currency: read on the pool, it is then opened; inside
   * a transaction that is refused, since an account opened there could still
   * roll back after being remembered here.
   */
  async platformAccount(kind: PlatformAccountKind, currency: string, db: Queryable = this.pool): Promise<AccountFacts> {
    const key = `${kind}:${currency}`;
    const cached = this.platform.get(key);
    if (cached) return cached;
    const select = 'SELECT id, kind, organization_id, currency FROM accounts WHERE organization_id IS NULL AND kind = $1 AND currency = $2';
    let row = (await db.query<AccountRow>(select, [kind, currency])).rows[0];
    if (!row) {
      if (db !== this.pool) {
        throw new AppError('BILLING_ACCOUNT_NOT_FOUND', `The platform's ${kind} account in ${currency} is not open`, { details: { kind, currency } });
      }
      await db.query(
        'INSERT INTO accounts (organization_id, kind, currency) VALUES (NULL, $1, $2) ON CONFLICT (organization_id, kind, currency) DO NOTHING',
        [kind, currency],
      );
      row = (await db.query<AccountRow>(select, [kind, currency])).rows[0]!;
    }
    const facts = factsOf(row);
    this.remember(facts);
    this.platform.set(key, facts);
    return facts;
  }

  private remember(facts: AccountFacts): void {
    this.byId.set(facts.id, facts);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
