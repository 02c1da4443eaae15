import { DateTimeScalar, type SubgraphContext } from '@aifactory/subgraph-kit';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { SkuCatalogueService } from '../domain/sku-catalogue.js';

export interface GpuaasContext extends SubgraphContext {
  skuCatalogue: SkuCatalogueService;
}

type Ref = { id: string };

export const resolvers: GraphQLResolverMap<GpuaasContext> = {
  DateTime: DateTimeScalar,
  SkuStatus: { ACTIVE: 'active', RETIRED: 'retired' },
  Query: {
    skus: (_root, _args, ctx: GpuaasContext) => ctx.skuCatalogue.listSkus(),
    sku: (_root, args: Ref, ctx: GpuaasContext) => ctx.skuCatalogue.sku(args.id),
  },
  Sku: {
    __resolveReference: (ref: Ref, ctx: GpuaasContext) => ctx.skuCatalogue.sku(ref.id),
  },
};
