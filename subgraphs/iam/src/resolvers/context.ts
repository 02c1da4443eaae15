import type { AccessModelReader } from '@aifactory/access-model';
import type { Access } from '@aifactory/authz';
import type { SubgraphContext } from '@aifactory/subgraph-kit';
import type { ApiKeyService } from '../domain/api-keys.js';
import type { HierarchyService } from '../domain/hierarchy.js';
import type { MembershipService } from '../domain/memberships.js';
import type { PolicyService } from '../domain/policy.js';
import type { RegistryService } from '../domain/registries.js';
import type { ServiceAccountService } from '../domain/service-accounts.js';
import type { ServiceIdentityService } from '../domain/service-identities.js';
import type { UserService } from '../domain/users.js';

/** One request's context: the kit's verified caller with its authorization, and iam's services. */
export interface IamContext extends SubgraphContext {
  access: Access;
  accessModel: AccessModelReader;
  hierarchy: HierarchyService;
  memberships: MembershipService;
  users: UserService;
  registries: RegistryService;
  policy: PolicyService;
  serviceAccounts: ServiceAccountService;
  apiKeys: ApiKeyService;
  serviceIdentities: ServiceIdentityService;
}

/** `first`/`after` of every list field. */
export interface PageArgs {
  first?: number | null;
  after?: string | null;
}
