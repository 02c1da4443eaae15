import { z } from 'zod';
import { AppError, parseInput } from '@aifactory/errors';
import { hasPlatformRole, type Principal } from '@aifactory/service-auth';
import type { Account, AccountKind, AccountStore } from '../data/accounts.js';

/** Every organization gets these, in its billing currency. */
export const ORGANIZATION_ACCOUNT_KINDS: readonly AccountKind[] = ['customer_balance', 'promotional_credit', 'disputes_held'];

const idSchema = z.uuid();
const openAccountsInput = z.object({
  organizationId: idSchema,
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as USD'),
});

/**
 * Organizations' accounts. Until IAM memberships reach billing (the IAM and
 * billing-ledger issues), only platform admins may read them; everyone else
 * is refused, never shown another organization's money.
 */
export class AccountService {
  constructor(private readonly store: AccountStore) {}

  private canSeeEverything(principal: Principal): boolean {
    return hasPlatformRole(principal, 'platform_admin');
  }

  async account(principal: Principal, id: string): Promise<Account | null> {
    if (!this.canSeeEverything(principal) || !idSchema.safeParse(id).success) return null;
    return this.store.findAccount(id);
  }

  async balanceAccountOf(principal: Principal, organizationId: string): Promise<Account | null> {
    if (!this.canSeeEverything(principal)) {
      throw new AppError('AUTH_FORBIDDEN', 'You may not see this organization’s accounts');
    }
    if (!idSchema.safeParse(organizationId).success) return null;
    return this.store.findAccountOf(organizationId, 'customer_balance');
  }

  /** Idempotent: opening an organization's accounts twice changes nothing. */
  async openOrganizationAccounts(input: { organizationId: string; currency: string }): Promise<Account[]> {
    const valid = parseInput(openAccountsInput, input);
    return this.store.ensureAccounts(valid.organizationId, valid.currency, ORGANIZATION_ACCOUNT_KINDS);
  }
}
