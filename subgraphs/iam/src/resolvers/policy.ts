import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { Plan, PolicyLevel } from '../data/policy.js';
import { connectionOf, keysetPage } from '../data/registries-pages.js';
import type { EffectivePolicyEntry, PolicySetting } from '../domain/policy.js';
import type { IamContext, PageArgs } from './context.js';

type ValueTargetArgs = { level: PolicyLevel; targetId?: string | null; key: string };

function policyValue(value: unknown): string | boolean {
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  throw new GraphQLError('A PolicyValue is a string (numbers, durations and enum values) or a boolean');
}

/** String or boolean (model.ts policyValueSchema): numbers travel as strings so they stay exact. */
export const PolicyValueScalar = new GraphQLScalarType({
  name: 'PolicyValue',
  serialize: policyValue,
  parseValue: policyValue,
  parseLiteral: (ast) => {
    if (ast.kind === Kind.STRING || ast.kind === Kind.BOOLEAN) return ast.value;
    throw new GraphQLError('A PolicyValue is a string (numbers, durations and enum values) or a boolean', { nodes: ast });
  },
});

const LEVELS = { GLOBAL: 'global', PLAN: 'plan', ORGANIZATION: 'organization', DEPARTMENT: 'department', PROJECT: 'project' } as const;
const byKey = (row: { key: string }) => row.key;

/** Policy's GraphQL fields (schema/policy.graphql): each reads its arguments and calls PolicyService. */
export const policyResolvers: GraphQLResolverMap<IamContext> = {
  PolicyValue: PolicyValueScalar,
  PolicyValueType: { INTEGER: 'integer', DECIMAL: 'decimal', BOOLEAN: 'boolean', DURATION: 'duration', ENUM: 'enum' },
  PolicyDirection: { CEILING: 'ceiling', FLOOR: 'floor', NONE: 'none' },
  PolicyApplication: { PER_PROJECT: 'per_project', POOLED: 'pooled' },
  PolicyLevel: LEVELS,
  PolicySource: { DEFAULT: 'default', ...LEVELS },
  Query: {
    policyKeys: async (_root, args: PageArgs, ctx: IamContext) => connectionOf(await ctx.policy.policyKeys(ctx, keysetPage(args)), byKey),
    policyKey: (_root, args: { key: string }, ctx: IamContext) => ctx.policy.policyKey(ctx, args.key),
    plans: async (_root, args: PageArgs, ctx: IamContext) => connectionOf(await ctx.policy.plans(ctx, keysetPage(args)), (plan: Plan) => plan.slug),
    plan: (_root, args: { id: string }, ctx: IamContext) => ctx.policy.plan(ctx, args.id),
    effectivePolicy: async (
      _root,
      args: PageArgs & { organizationId?: string | null; departmentId?: string | null; projectId?: string | null; keys?: string[] | null },
      ctx: IamContext,
    ) => {
      const page = await ctx.policy.effectivePolicy(ctx, args, keysetPage(args));
      return { ...connectionOf(page, byKey), version: page.version };
    },
    policyValues: async (_root, args: PageArgs & { level: PolicyLevel; targetId?: string | null }, ctx: IamContext) =>
      connectionOf(await ctx.policy.valuesAt(ctx, args, keysetPage(args)), byKey),
  },
  Mutation: {
    definePolicyKey: (_root, args: { input: Parameters<IamContext['policy']['definePolicyKey']>[1] }, ctx: IamContext) =>
      ctx.policy.definePolicyKey(ctx, args.input),
    createPlan: (_root, args: { input: { slug: string; name: string } }, ctx: IamContext) => ctx.policy.createPlan(ctx, args.input),
    setPlanValue: (_root, args: { planId: string; key: string; value: string | boolean }, ctx: IamContext) => ctx.policy.setPlanValue(ctx, args),
    assignPlan: (_root, args: { organizationId: string; planId?: string | null }, ctx: IamContext) =>
      ctx.policy.assignPlan(ctx, { organizationId: args.organizationId, planId: args.planId ?? null }),
    setPolicyValue: (_root, args: ValueTargetArgs & { value: string | boolean }, ctx: IamContext) => ctx.policy.setPolicyValue(ctx, args),
    clearPolicyValue: (_root, args: ValueTargetArgs, ctx: IamContext) => ctx.policy.clearPolicyValue(ctx, args),
  },
  Plan: {
    values: async (plan: Plan, args: PageArgs, ctx: IamContext) =>
      connectionOf(await ctx.policy.valuesAt(ctx, { level: 'plan', targetId: plan.id }, keysetPage(args)), (setting: PolicySetting) => setting.key),
  },
  PlanAssignment: {
    plan: (assignment: { planId: string | null }, _args, ctx: IamContext) => (assignment.planId === null ? null : ctx.policy.plan(ctx, assignment.planId)),
  },
  EffectivePolicyValue: {
    source: (entry: EffectivePolicyEntry) => entry.level,
  },
};
