import { Outbox } from '@aifactory/subgraph-kit';
import type { IamConfig } from './config.js';
import { AccessStore } from './data/access.js';
import type { IamDatabase } from './data/database.js';
import { HierarchyStore } from './data/hierarchy.js';
import { FreshPolicy } from './domain/fresh-policy.js';
import { HierarchyService } from './domain/hierarchy.js';
import { MembershipWriter } from './domain/membership-writer.js';
import { MembershipService } from './domain/memberships.js';
import { PolicyService } from './domain/policy.js';
import { RegistryService } from './domain/registries.js';
import { UserService } from './domain/users.js';

/** iam's services over one database, wired once per process. */
export interface IamServices {
  hierarchy: HierarchyService;
  memberships: MembershipService;
  users: UserService;
  registries: RegistryService;
  policy: PolicyService;
  accessStore: AccessStore;
  freshPolicy: FreshPolicy;
}

export function createIamServices(database: IamDatabase, config: Pick<IamConfig, 'EVENT_SUBJECT_PREFIX' | 'DEFAULT_BILLING_CURRENCY'>): IamServices {
  const outbox = new Outbox({ schema: database.schema, subjectPrefix: config.EVENT_SUBJECT_PREFIX });
  const hierarchyStore = new HierarchyStore(database.prisma);
  const accessStore = new AccessStore(database.prisma);
  const writer = new MembershipWriter(accessStore, outbox);
  const freshPolicy = new FreshPolicy();
  return {
    hierarchy: new HierarchyService(hierarchyStore, accessStore, outbox, writer, freshPolicy, config.DEFAULT_BILLING_CURRENCY),
    memberships: new MembershipService(hierarchyStore, accessStore, outbox, writer),
    users: new UserService(hierarchyStore, accessStore, outbox, writer),
    registries: new RegistryService(database.prisma, outbox),
    policy: new PolicyService(database.prisma, outbox),
    accessStore,
    freshPolicy,
  };
}

