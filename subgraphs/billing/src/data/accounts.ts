import { PLATFORM_ACCOUNT_KINDS } from './account-directory.js';
import type { BillingPrisma } from './database.js';
import type { Account, AccountKind } from '../generated/prisma/client.js';

export type { Account, AccountKind };

export class AccountStore {
  constructor(private readonly prisma: BillingPrisma) {}

  findAccount(id: string): Promise<Account | null> {
    return this.prisma.account.findUnique({ where: { id } });
  }

  /** The oldest account of a kind: an organization has one per currency, and one billing currency. */
  findAccountOf(organizationId: string, kind: AccountKind): Promise<Account | null> {
    return this.prisma.account.findFirst({ where: { organizationId, kind }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
  }

  /**
   * Opens each kind unless it is open already, with the organization's funds
   * row and the platform accounts of its currency, all or none.
   */
  ensureAccounts(organizationId: string, currency: string, kinds: readonly AccountKind[]): Promise<Account[]> {
    return this.prisma.$transaction(async (tx) => {
      await tx.organizationFunds.upsert({ where: { organizationId }, create: { organizationId, currency }, update: {} });
      for (const kind of PLATFORM_ACCOUNT_KINDS) {
        // Prisma's upsert cannot name a unique key with a NULL in it; the index is NULLS NOT DISTINCT.
        await tx.$executeRaw`INSERT INTO accounts (organization_id, kind, currency) VALUES (NULL, ${kind}::"AccountKind", ${currency})
          ON CONFLICT (organization_id, kind, currency) DO NOTHING`;
      }
      const accounts: Account[] = [];
      for (const kind of kinds) {
        accounts.push(
          await tx.account.upsert({
            where: { organizationId_kind_currency: { organizationId, kind, currency } },
            create: { organizationId, kind, currency },
            update: {},
          }),
        );
      }
      return accounts;
    });
  }
}
