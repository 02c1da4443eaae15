import { DateTimeScalar, mergeResolvers } from '@aifactory/subgraph-kit';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { IamContext } from './context.js';
import { hierarchyResolvers } from './hierarchy.js';
import { memberResolvers } from './members.js';
import { policyResolvers } from './policy.js';
import { registryResolvers } from './registries.js';
import { serviceAccountResolvers } from './service-accounts.js';

export type { IamContext } from './context.js';

export const resolvers: GraphQLResolverMap<IamContext> = mergeResolvers(
  { DateTime: DateTimeScalar } as GraphQLResolverMap<IamContext>,
  hierarchyResolvers,
  memberResolvers,
  registryResolvers,
  policyResolvers,
  serviceAccountResolvers,
);
