import type { Principal } from '@aifactory/service-auth';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { graphql, parse, type GraphQLSchema } from 'graphql';
import { accessFor, grantAt, recordingSink, SUBGRAPH_HEADER, user } from '../test/fixtures.js';
import type { Access } from './access.js';
import { applyScopesDirective } from './scopes-directive.js';

const TYPE_DEFS = parse(`
  ${SUBGRAPH_HEADER}

  type Query {
    allocations: [Allocation!]! @scopes(anyOf: [["gpuaas:allocation:read"]])
    projects: [Project!]!
    nodes: [Node!]!
    open: String!
    readAndCreate: String @scopes(anyOf: [["gpuaas:allocation:read", "gpuaas:allocation:create"], ["platform:plan:manage"]])
    migrating: String @scopes(anyOf: [["gpuaas:node:reboot"], ["gpuaas:allocation:read"]])
    retiredOnly: String @scopes(anyOf: [["gpuaas:node:reboot"]])
    misspelt: String @scopes(anyOf: [["gpuaas:allocation:raed"]])
  }

  type Allocation @key(fields: "id") @scopes(anyOf: [["gpuaas:allocation:read"]]) {
    id: ID!
    name: String!
    owner: String @scopes(anyOf: [["platform:member:manage"]])
  }

  interface Owned @scopes(anyOf: [["platform:project:read"]]) {
    owner: String
  }

  type Project implements Owned {
    id: ID!
    owner: String
  }

  type Node @key(fields: "id") {
    id: ID!
  }

  extend type Node @scopes(anyOf: [["gpuaas:node:list"]])
`);

function subgraph(loaded: string[]): GraphQLSchema {
  const schema = buildSubgraphSchema({
    typeDefs: TYPE_DEFS,
    resolvers: {
      Query: {
        allocations: () => [{ id: 'a1', name: 'first', owner: 'alice' }],
        projects: () => [{ id: 'p1', owner: 'alice' }],
        nodes: () => [{ id: 'n1' }],
        open: () => 'open',
        readAndCreate: () => 'ok',
        migrating: () => 'ok',
        retiredOnly: () => 'ok',
        misspelt: () => 'ok',
      },
      Allocation: {
        __resolveReference: (reference: { id: string }) => {
          loaded.push(reference.id);
          return { id: reference.id, name: `allocation ${reference.id}`, owner: 'alice' };
        },
      },
    },
  });
  return applyScopesDirective(schema, (context) => (context as { access: Access }).access);
}

async function run(principal: Principal, source: string, variableValues?: Record<string, unknown>) {
  const sink = recordingSink();
  const { access, auditor } = accessFor(principal, { sink });
  const loaded: string[] = [];
  const result = await graphql({ schema: subgraph(loaded), source, contextValue: { access }, ...(variableValues ? { variableValues } : {}) });
  await auditor.flush();
  const codes = (result.errors ?? []).map((error) => (error.originalError as { code?: string } | undefined)?.code);
  return { result, codes, written: sink.written, loaded };
}

const projectMember = user([grantAt.project('project_member', 'PA')]);
const viewer = user([grantAt.project('viewer', 'PA')]);
const nobody = user([]);
const operator = user([], ['platform_admin']);

describe('applyScopesDirective: fields', () => {
  it('resolves a field whose scope is held anywhere', async () => {
    const { result } = await run(viewer, '{ allocations { id name } }');

    expect(result).toEqual({ data: { allocations: [{ id: 'a1', name: 'first' }] } });
  });

  it('refuses with AUTH_FORBIDDEN and records one deny naming the first scope, with no resource', async () => {
    const { result, codes, written } = await run(nobody, '{ allocations { id } }');

    expect(result.data).toBeNull();
    expect(codes).toEqual(['AUTH_FORBIDDEN']);
    expect(result.errors?.[0]?.message).toBe('Missing permission gpuaas:allocation:read');
    expect(written).toEqual([
      expect.objectContaining({
        organizationId: null,
        record: expect.objectContaining({ scope: 'gpuaas:allocation:read', resource: null, reason: 'directive' }),
      }),
    ]);
  });

  it('leaves a field without @scopes alone', async () => {
    expect((await run(nobody, '{ open }')).result).toEqual({ data: { open: 'open' } });
  });

  it('needs every scope of one inner list (OR of ANDs)', async () => {
    expect((await run(projectMember, '{ readAndCreate }')).result).toEqual({ data: { readAndCreate: 'ok' } });
    expect((await run(operator, '{ readAndCreate }')).result).toEqual({ data: { readAndCreate: 'ok' } });
    const refused = await run(viewer, '{ readAndCreate }');
    expect(refused.codes).toEqual(['AUTH_FORBIDDEN']);
    expect(refused.result.errors?.[0]?.message).toBe(
      'Missing permission gpuaas:allocation:read and gpuaas:allocation:create, or platform:plan:manage',
    );
  });
});

describe('applyScopesDirective: types', () => {
  it("applies a type's @scopes to every field of it, and a field's own on top", async () => {
    const { result, codes } = await run(viewer, '{ allocations { id owner } }');

    expect(result.data).toEqual({ allocations: [{ id: 'a1', owner: null }] });
    expect(codes).toEqual(['AUTH_FORBIDDEN']);
  });

  it("applies an interface's @scopes to every field of the types implementing it", async () => {
    expect((await run(viewer, '{ projects { id owner } }')).result).toEqual({ data: { projects: [{ id: 'p1', owner: 'alice' }] } });
    expect((await run(nobody, '{ projects { id } }')).codes).toEqual(['AUTH_FORBIDDEN']);
  });

  it('reads @scopes from a type extension', async () => {
    expect((await run(viewer, '{ nodes { id } }')).result).toEqual({ data: { nodes: [{ id: 'n1' }] } });
    expect((await run(nobody, '{ nodes { id } }')).codes).toEqual(['AUTH_FORBIDDEN']);
  });
});

describe('applyScopesDirective: _entities', () => {
  const ENTITIES = 'query ($representations: [_Any!]!) { _entities(representations: $representations) { ... on Allocation { id name } } }';
  const representations = [{ __typename: 'Allocation', id: 'a7' }];

  it('resolves an entity for a principal holding the type-level scope', async () => {
    const { result, loaded } = await run(viewer, ENTITIES, { representations });

    expect(result).toEqual({ data: { _entities: [{ id: 'a7', name: 'allocation a7' }] } });
    expect(loaded).toEqual(['a7']);
  });

  it('refuses an entity without loading it for a principal who lacks the scope', async () => {
    const { result, codes, loaded, written } = await run(nobody, ENTITIES, { representations });

    expect(result.data).toEqual({ _entities: [null] });
    expect(codes).toEqual(['AUTH_FORBIDDEN']);
    expect(loaded).toEqual([]);
    expect(written).toHaveLength(1);
  });

  it('refuses only the entities of the guarded type in a mixed batch', async () => {
    const mixed = [{ __typename: 'Allocation', id: 'a7' }, { __typename: 'Node', id: 'n7' }];
    const source = 'query ($r: [_Any!]!) { _entities(representations: $r) { __typename ... on Allocation { id } } }';

    const { result, codes } = await run(user([], ['internal_developer']), source, { r: mixed });

    expect(result.data).toEqual({ _entities: [null, { __typename: 'Node' }] });
    expect(codes).toEqual(['AUTH_FORBIDDEN']);
  });

  it('guards the fields of an entity that has no __resolveReference', async () => {
    const source = 'query ($r: [_Any!]!) { _entities(representations: $r) { ... on Node { id } } }';

    const { result, codes } = await run(nobody, source, { r: [{ __typename: 'Node', id: 'n7' }] });

    expect(result.data).toEqual({ _entities: [null] });
    expect(codes).toEqual(['AUTH_FORBIDDEN']);
  });
});

describe('applyScopesDirective: lifecycle', () => {
  it('lets a field listing a retired and an active scope work for holders of the active one', async () => {
    expect((await run(viewer, '{ migrating }')).result).toEqual({ data: { migrating: 'ok' } });
  });

  it('refuses a field whose only scope is retired with AUTH_SCOPE_RETIRED, even for platform_admin', async () => {
    const { codes, written } = await run(operator, '{ retiredOnly }');

    expect(codes).toEqual(['AUTH_SCOPE_RETIRED']);
    expect(written.map((denied) => denied.record.reason)).toEqual(['scope_retired']);
  });

  it('fails an unregistered scope as a defect whoever asks', async () => {
    expect((await run(operator, '{ misspelt }')).codes).toEqual(['AUTH_SCOPE_UNREGISTERED']);
  });

  it('flags a deprecated scope in use', async () => {
    const flagged: string[] = [];
    const { access } = accessFor(viewer, { onDeprecated: (scope) => flagged.push(scope) });

    await graphql({ schema: subgraph([]), source: '{ nodes { id } }', contextValue: { access } });

    expect(flagged).toEqual(['gpuaas:node:list']);
  });
});
