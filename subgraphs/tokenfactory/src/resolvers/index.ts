import { DateTimeScalar, type SubgraphContext } from '@aifactory/subgraph-kit';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { ModelCatalogueService } from '../domain/model-catalogue.js';

export interface TokenfactoryContext extends SubgraphContext {
  modelCatalogue: ModelCatalogueService;
}

type Ref = { id: string };

export const resolvers: GraphQLResolverMap<TokenfactoryContext> = {
  DateTime: DateTimeScalar,
  ModelStatus: { ACTIVE: 'active', DEPRECATED: 'deprecated', RETIRED: 'retired' },
  Query: {
    models: (_root, _args, ctx: TokenfactoryContext) => ctx.modelCatalogue.listModels(),
    model: (_root, args: Ref, ctx: TokenfactoryContext) => ctx.modelCatalogue.model(args.id),
  },
  Model: {
    __resolveReference: (ref: Ref, ctx: TokenfactoryContext) => ctx.modelCatalogue.model(ref.id),
  },
};
