import { DateTimeScalar } from '@aifactory/subgraph-kit';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { IamContext } from './context.js';
import { hierarchyResolvers } from './hierarchy.js';
import { memberResolvers } from './members.js';
import { policyResolvers } from './policy.js';
import { registryResolvers } from './registries.js';
import { serviceAccountResolvers } from './service-accounts.js';

export type { IamContext } from './context.js';

/** Each area's resolver map, merged type by type; two areas resolving the same field is a defect caught at start. */
function mergeResolvers(...maps: GraphQLResolverMap<IamContext>[]): GraphQLResolverMap<IamContext> {
  const merged: Record<string, Record<string, unknown>> = {};
  for (const map of maps) {
    for (const [typeName, fields] of Object.entries(map)) {
      if (typeName === 'DateTime' || !isFieldMap(fields)) {
        merged[typeName] = fields as never;
        continue;
      }
      const target = (merged[typeName] ??= {});
      for (const [field, resolver] of Object.entries(fields)) {
        if (field in target) throw new Error(`Two resolvers for ${typeName}.${field}`);
        target[field] = resolver;
      }
    }
  }
  return merged as GraphQLResolverMap<IamContext>;
}

function isFieldMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && value.constructor === Object;
}

export const resolvers: GraphQLResolverMap<IamContext> = mergeResolvers(
  { DateTime: DateTimeScalar } as GraphQLResolverMap<IamContext>,
  hierarchyResolvers,
  memberResolvers,
  registryResolvers,
  policyResolvers,
  serviceAccountResolvers,
);
