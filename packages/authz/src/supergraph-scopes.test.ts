import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { SUBGRAPH_HEADER, testCatalog } from '../test/fixtures.js';
import { supergraphScopes, unregisteredScopes } from './supergraph-scopes.js';

const GPUAAS = `
  ${SUBGRAPH_HEADER}
  type Query {
    allocations: [Allocation!]! @scopes(anyOf: [["gpuaas:allocation:read"], ["platform:plan:manage"]])
  }
  type Allocation @key(fields: "id") @scopes(anyOf: [["gpuaas:allocation:read"]]) {
    id: ID!
    name: String!
  }
`;

const BILLING = `
  ${SUBGRAPH_HEADER}
  type Query {
    invoices: [String!]! @scopes(anyOf: [["platform:billing:raed", "platform:project:read"]])
  }
  type Allocation @key(fields: "id") {
    id: ID!
    cost: String! @scopes(anyOf: [["gpuaas:allocation:create"]])
  }
`;

function composed(): string {
  const result = composeServices([
    { name: 'gpuaas', url: 'http://gpuaas.test/graphql', typeDefs: parse(GPUAAS) },
    { name: 'billing', url: 'http://billing.test/graphql', typeDefs: parse(BILLING) },
  ]);
  if (result.errors) throw new Error(result.errors.map((error) => error.message).join('\n'));
  return result.supergraphSdl;
}

describe('@scopes through composition', () => {
  it('composes two subgraphs using @scopes and keeps the directive in the supergraph', () => {
    const sdl = composed();

    expect(sdl).toContain('directive @scopes(anyOf: [[String!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE');
    expect(sdl).toMatch(/type Allocation[^{]*@scopes\(anyOf: \[\["gpuaas:allocation:read"\]\]\)/);
    expect(sdl).toContain('cost: String! @join__field(graph: BILLING) @scopes(anyOf: [["gpuaas:allocation:create"]])');
  });
});

describe('supergraphScopes', () => {
  it('lists every scope any @scopes names, once, sorted', () => {
    expect(supergraphScopes(composed())).toEqual([
      'gpuaas:allocation:create',
      'gpuaas:allocation:read',
      'platform:billing:raed',
      'platform:plan:manage',
      'platform:project:read',
    ]);
  });

  it('ignores strings in other directives', () => {
    expect(supergraphScopes('type Query { a: String @deprecated(reason: "x:y:z") }')).toEqual([]);
  });
});

describe('unregisteredScopes', () => {
  it('reports a scope the registry does not know, which fails the CI check', () => {
    const catalog = testCatalog();

    expect(unregisteredScopes(composed(), (scope) => catalog.isRegistered(scope))).toEqual(['platform:billing:raed']);
  });
});
