import { DateTimeScalar, type SubgraphContext } from '@aifactory/subgraph-kit';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { AppService } from '../domain/apps.js';

export interface AppplatformContext extends SubgraphContext {
  apps: AppService;
}

type Ref = { id: string };

export const resolvers: GraphQLResolverMap<AppplatformContext> = {
  DateTime: DateTimeScalar,
  AppStatus: { PENDING: 'pending', RUNNING: 'running', STOPPED: 'stopped', FAILED: 'failed' },
  Query: {
    apps: (_root, args: { projectId: string }, ctx: AppplatformContext) => ctx.apps.appsOf(ctx.access, args.projectId),
    app: (_root, args: Ref, ctx: AppplatformContext) => ctx.apps.app(ctx.access, args.id),
  },
  App: {
    __resolveReference: (ref: Ref, ctx: AppplatformContext) => ctx.apps.app(ctx.access, ref.id),
  },
};
