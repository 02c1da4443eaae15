import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';

/**
 * A subgraph's resolver maps, one per area, merged type by type; two areas
 * resolving the same field is a defect caught at start. A scalar (a class
 * instance, not a plain map of fields) is taken as it is.
 */
export function mergeResolvers<TContext>(...maps: GraphQLResolverMap<TContext>[]): GraphQLResolverMap<TContext> {
  const merged: Record<string, Record<string, unknown>> = {};
  for (const map of maps) {
    for (const [typeName, fields] of Object.entries(map)) {
      if (!isFieldMap(fields)) {
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
  return merged as GraphQLResolverMap<TContext>;
}

/** A plain object of field resolvers (or enum values), not a scalar's class instance. */
function isFieldMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && value.constructor === Object;
}
