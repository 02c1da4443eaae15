import { DateTimeScalar, type SubgraphContext } from '@aifactory/subgraph-kit';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { AuditLogService } from '../domain/audit-log.js';

export interface EvidenceContext extends SubgraphContext {
  auditLog: AuditLogService;
}

type Ref = { id: string };

export const resolvers: GraphQLResolverMap<EvidenceContext> = {
  DateTime: DateTimeScalar,
  Query: {
    auditEvents: (_root, args: { limit: number }, ctx: EvidenceContext) => ctx.auditLog.auditEvents(ctx.principal, args.limit),
  },
  AuditEvent: {
    __resolveReference: (ref: Ref, ctx: EvidenceContext) => ctx.auditLog.auditEvent(ctx.principal, ref.id),
  },
};
