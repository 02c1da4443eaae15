import { z } from 'zod';
import { parseInput } from '@aifactory/errors';
import type { Access } from '@aifactory/authz';
import type { Account, AccountStore } from '../data/accounts.js';

const idSchema = z.uuid();
const openAccountsInput = z.object({
  organizationId: idSchema,
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as USD'),
});

/** An organization's money is read with this scope, held on the organization itself (org_admin, platform admins). */
const READ_SCOPE = 'platform:billing:read';

/**
 * Organizations' accounts. Every read is checked with `can()` against the
 * account's organization, so nobody sees another organization's money.
 */
export class AccountService {
  constructor(private readonly store: AccountStore) {}

  /** Null, like an unknown id, when the caller may not see it; the refusal is audited. */
  async account(access: Access, id: string): Promise<Account | null> {
    if (!idSchema.safeParse(id).success) return null;
    const account = await this.store.findAccount(id);
    if (!account || account.organizationId === null || !access.can(READ_SCOPE, { organizationId: account.organizationId })) return null;
    return account;
  }

  async balanceAccountOf(access: Access, organizationId: string): Promise<Account | null> {
    if (!idSchema.safeParse(organizationId).success) return null;
    access.require(READ_SCOPE, { organizationId });
    return this.store.findAccountOf(organizationId, 'customer_balance');
  }

  /** Idempotent: opening an organization's accounts twice changes nothing. */
  async openOrganizationAccounts(input: { organizationId: string; currency: string }): Promise<Account[]> {
    const valid = parseInput(openAccountsInput, input);
    return this.store.ensureAccounts(valid.organizationId, valid.currency);
  }
}
