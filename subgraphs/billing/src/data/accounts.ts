import type pg from 'pg';
import type { Queryable } from '@aifactory/events';
import { ORGANIZATION_ACCOUNT_KINDS, PLATFORM_ACCOUNT_KINDS } from './account-directory.js';
import type { BillingPrisma } from './database.js';
import { inTransaction } from './transactions.js';
import type { Account, AccountKind } from '../generated/prisma/client.js';

export type { Account, AccountKind };

/**
 * Opens the organization's funds row and its accounts, and the platform
 * accounts of its currency, unless they are open already, inside the
 * caller's transaction. The funds row is written first and decides the
 * currency: an organization is billed in the currency it was first opened
 * in, whatever a later event says.
 */
export async function openOrganizationAccountsIn(tx: Queryable, organizationId: string, currency: string): Promise<void> {
  await tx.query(`INSERT INTO organization_funds (organization_id, currency) VALUES ($1, $2) ON CONFLICT (organization_id) DO NOTHING`, [
    organizationId,
    currency,
  ]);
  await tx.query(
    `INSERT INTO accounts (organization_id, kind, currency)
     SELECT f.organization_id, k.kind::"AccountKind", f.currency
     FROM organization_funds f CROSS JOIN unnest($2::text[]) AS k(kind)
     WHERE f.organization_id = $1
     ON CONFLICT (organization_id, kind, currency) DO NOTHING`,
    [organizationId, ORGANIZATION_ACCOUNT_KINDS],
  );
  await tx.query(
    `INSERT INTO accounts (organization_id, kind, currency)
     SELECT NULL, k.kind::"AccountKind", f.currency
     FROM organization_funds f CROSS JOIN unnest($2::text[]) AS k(kind)
     WHERE f.organization_id = $1
     ON CONFLICT (organization_id, kind, currency) DO NOTHING`,
    [organizationId, PLATFORM_ACCOUNT_KINDS],
  );
}

export class AccountStore {
  constructor(
    private readonly prisma: BillingPrisma,
    private readonly pool: pg.Pool,
  ) {}

  findAccount(id: string): Promise<Account | null> {
    return this.prisma.account.findUnique({ where: { id } });
  }

  /** The oldest account of a kind: an organization has one per currency, and one billing currency. */
  findAccountOf(organizationId: string, kind: AccountKind): Promise<Account | null> {
    return this.prisma.account.findFirst({ where: { organizationId, kind }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
  }

  /** Opens the organization's accounts (openOrganizationAccountsIn) in a transaction of its own; returns its three, in kind order. */
  async ensureAccounts(organizationId: string, currency: string): Promise<Account[]> {
    await inTransaction(this.pool, (tx) => openOrganizationAccountsIn(tx, organizationId, currency));
    const accounts = await this.prisma.account.findMany({ where: { organizationId } });
    return ORGANIZATION_ACCOUNT_KINDS.map((kind) => accounts.find((account) => account.kind === kind)!);
  }
}
