import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { applyScopesDirective, type Access } from '@aifactory/authz';
import type { Principal } from '@aifactory/service-auth';
import { graphql, parse, type GraphQLSchema } from 'graphql';
import { resolvers } from '../src/resolvers/index.js';
import { typeDefsSource } from '../src/server.js';
import { platformAdmin, startRegistriesHarness, type RegistriesHarness } from './registries-fixture.js';

/**
 * The registries' and policy's SDL and resolvers, executed the way the kit
 * serves them (the iam schema wrapped with @scopes), against real services.
 */
describe('iam registries and policy over GraphQL', () => {
  let h: RegistriesHarness;
  let schema: GraphQLSchema;

  beforeAll(async () => {
    h = await startRegistriesHarness();
    schema = applyScopesDirective(
      buildSubgraphSchema({ typeDefs: parse(typeDefsSource), resolvers: resolvers as GraphQLResolverMap<unknown> }),
      (context) => (context as { access: Access }).access,
    );
  });

  afterAll(async () => {
    await h?.close();
  });

  const run = async (principal: Principal, source: string, variableValues: Record<string, unknown> = {}) => {
    const caller = await h.caller(principal);
    const contextValue = { ...caller, registries: h.registries, policy: h.policy };
    const result = await graphql({ schema, source, variableValues, contextValue });
    const codes = (result.errors ?? []).map((error) => (error.originalError as { code?: string } | undefined)?.code ?? error.message);
    return { data: result.data as Record<string, any> | null | undefined, codes };
  };

  it('lists the registries with keyset pages, enums and nested fields', async () => {
    const { data, codes } = await run(
      platformAdmin,
      `{
        products(first: 2) { edges { cursor node { id lifecycle } } pageInfo { hasNextPage endCursor } }
        scopes(product: "platform", lifecycle: ACTIVE, first: 2) { edges { node { id riskClass lifecycle product { id } } } }
        roles(first: 10) { edges { node { id kind levels rank allScopes scopes(first: 1) { edges { node { id } } } } } }
        auditActions(product: "platform", first: 1) { edges { node { id subject retentionClass privileged } } }
        registryVersions(first: 10) { edges { node { name version } } }
      }`,
    );

    expect(codes).toEqual([]);
    expect(data?.products.edges).toHaveLength(2);
    expect(data?.products.pageInfo).toMatchObject({ hasNextPage: true, endCursor: data?.products.edges[1].cursor });
    expect(data?.scopes.edges[0].node).toMatchObject({ lifecycle: 'ACTIVE', product: { id: 'platform' } });
    const roles = Object.fromEntries(data?.roles.edges.map((edge: any) => [edge.node.id, edge.node]));
    expect(roles.viewer).toMatchObject({ kind: 'MEMBERSHIP', levels: ['ORGANIZATION', 'DEPARTMENT', 'PROJECT'], allScopes: false });
    expect(roles.platform_admin).toMatchObject({ kind: 'PLATFORM', allScopes: true });
    expect(roles.platform_admin.scopes.edges).toHaveLength(1);
    expect(data?.auditActions.edges[0].node.subject).toBe(`platform.audit.${data?.auditActions.edges[0].node.id}`);
    expect(data?.registryVersions.edges.map((edge: any) => edge.node.name)).toContain('policy');
  });

  it('refuses the registries to a member without platform:registry:read', async () => {
    const { organizationId } = await h.organization();
    const member: Principal = { type: 'user', subject: 'member', platformRoles: [], grants: [{ level: 'organization', id: organizationId, role: 'viewer', org: organizationId, dept: null }] };

    const { codes } = await run(member, '{ products { edges { node { id } } } }');
    const mutation = await run(member, 'mutation { registerProduct(input: { id: "x", displayName: "X", owner: "x" }) { id } }');

    expect(codes).toEqual(['AUTH_FORBIDDEN']);
    expect(mutation.codes).toEqual(['AUTH_FORBIDDEN']);
  });

  it('sets values and answers the effective policy with its source and pool', async () => {
    const { organizationId, departmentId, projectIds } = await h.organization();
    const set = await run(
      platformAdmin,
      `mutation($org: ID!, $dept: ID!) {
        org: setPolicyValue(level: ORGANIZATION, targetId: $org, key: "gpuaas.gpus.max_per_project", value: "6") { level targetId value }
        dept: setPolicyValue(level: DEPARTMENT, targetId: $dept, key: "billing.budget.monthly_spend", value: "5000.50") { level value }
      }`,
      { org: organizationId, dept: departmentId },
    );
    const { data, codes } = await run(
      platformAdmin,
      `query($project: ID!) {
        effectivePolicy(projectId: $project, keys: ["gpuaas.gpus.max_per_project", "billing.budget.monthly_spend", "gpuaas.access.enabled"]) {
          version
          edges { node { key value source sourceId application pool { level id } definition { type direction default } } }
        }
      }`,
      { project: projectIds[0] },
    );
    const refused = await run(platformAdmin, `mutation($org: ID!) { setPolicyValue(level: ORGANIZATION, targetId: $org, key: "gpuaas.gpus.max_per_project", value: 6) { value } }`, {
      org: organizationId,
    });

    expect(set.codes).toEqual([]);
    expect(set.data?.org).toEqual({ level: 'ORGANIZATION', targetId: organizationId, value: '6' });
    expect(codes).toEqual([]);
    expect(data?.effectivePolicy.version).toBe(await h.version('policy'));
    const byKey = Object.fromEntries(data?.effectivePolicy.edges.map((edge: any) => [edge.node.key, edge.node]));
    expect(byKey['billing.budget.monthly_spend']).toMatchObject({
      value: '5000.50',
      source: 'DEPARTMENT',
      sourceId: departmentId,
      application: 'POOLED',
      pool: { level: 'DEPARTMENT', id: departmentId },
    });
    expect(byKey['gpuaas.gpus.max_per_project']).toMatchObject({
      value: '6',
      source: 'ORGANIZATION',
      pool: null,
      definition: { type: 'INTEGER', direction: 'CEILING', default: '8' },
    });
    expect(byKey['gpuaas.access.enabled']).toMatchObject({ value: true, source: 'DEFAULT', sourceId: null });
    expect(refused.codes).toHaveLength(1);
  });
});
