import type { PepperRing } from '@aifactory/service-auth';
import { Outbox } from '@aifactory/subgraph-kit';
import type { IamConfig } from './config.js';
import { AccessStore } from './data/access.js';
import { ApiKeyStore } from './data/api-keys.js';
import type { IamDatabase } from './data/database.js';
import { HierarchyStore } from './data/hierarchy.js';
import { ServiceAccountStore } from './data/service-accounts.js';
import { ServiceIdentityStore } from './data/service-identities.js';
import { ApiKeyWriter } from './domain/api-key-writer.js';
import { ApiKeyService } from './domain/api-keys.js';
import { CredentialPublication } from './domain/credential-publication.js';
import { FreshPolicy } from './domain/fresh-policy.js';
import { HierarchyService } from './domain/hierarchy.js';
import { MembershipWriter } from './domain/membership-writer.js';
import { MembershipService } from './domain/memberships.js';
import { PolicyService } from './domain/policy.js';
import { RegistryService } from './domain/registries.js';
import { ServiceAccountService } from './domain/service-accounts.js';
import { ServiceIdentityService } from './domain/service-identities.js';
import { UserService } from './domain/users.js';

/** iam's services over one database, wired once per process. */
export interface IamServices {
  hierarchy: HierarchyService;
  memberships: MembershipService;
  users: UserService;
  registries: RegistryService;
  policy: PolicyService;
  serviceAccounts: ServiceAccountService;
  apiKeys: ApiKeyService;
  serviceIdentities: ServiceIdentityService;
  accessStore: AccessStore;
  apiKeyStore: ApiKeyStore;
  serviceIdentityStore: ServiceIdentityStore;
  freshPolicy: FreshPolicy;
  /** The running read model attaches here, so committed credential changes reach it at once. */
  credentialPublication: CredentialPublication;
}

export type IamServicesConfig = Pick<IamConfig, 'EVENT_SUBJECT_PREFIX' | 'DEFAULT_BILLING_CURRENCY'> & Partial<Pick<IamConfig, 'API_KEY_ENVIRONMENT'>>;

/**
 * `pepper` is the API-key pepper ring (API_KEY_PEPPER_FILE); a process that
 * never makes a key (a seed, a CLI) may leave it out, and creating a key
 * there is refused.
 */
export function createIamServices(database: IamDatabase, config: IamServicesConfig, pepper?: PepperRing): IamServices {
  const outbox = new Outbox({ schema: database.schema, subjectPrefix: config.EVENT_SUBJECT_PREFIX });
  const hierarchyStore = new HierarchyStore(database.prisma);
  const accessStore = new AccessStore(database.prisma);
  const apiKeyStore = new ApiKeyStore(database.prisma);
  const serviceAccountStore = new ServiceAccountStore(database.prisma);
  const serviceIdentityStore = new ServiceIdentityStore(database.prisma);
  const writer = new MembershipWriter(accessStore, outbox);
  const apiKeyWriter = new ApiKeyWriter(apiKeyStore, accessStore, outbox);
  const freshPolicy = new FreshPolicy();
  const credentialPublication = new CredentialPublication();
  return {
    hierarchy: new HierarchyService(hierarchyStore, accessStore, outbox, writer, freshPolicy, apiKeyWriter, config.DEFAULT_BILLING_CURRENCY),
    memberships: new MembershipService(hierarchyStore, accessStore, outbox, writer, apiKeyWriter),
    users: new UserService(hierarchyStore, accessStore, outbox, writer),
    registries: new RegistryService(database.prisma, outbox),
    policy: new PolicyService(database.prisma, outbox),
    serviceAccounts: new ServiceAccountService(serviceAccountStore, hierarchyStore, accessStore, outbox),
    apiKeys: new ApiKeyService(apiKeyStore, serviceAccountStore, hierarchyStore, accessStore, outbox, freshPolicy, credentialPublication, {
      pepper,
      environment: config.API_KEY_ENVIRONMENT ?? 'dev',
    }),
    serviceIdentities: new ServiceIdentityService(serviceIdentityStore, hierarchyStore, outbox, credentialPublication),
    accessStore,
    apiKeyStore,
    serviceIdentityStore,
    freshPolicy,
    credentialPublication,
  };
}
