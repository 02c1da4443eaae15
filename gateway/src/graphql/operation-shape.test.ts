import { buildSchema, getIntrospectionQuery, parse, type OperationDefinitionNode } from 'graphql';
import { measureOperation } from './operation-shape.js';

const schema = buildSchema(`
  type Query { node(id: ID!): Node, nodes: [Node!]! }
  type Node { id: ID! name: String! parent: Node children: [Node!]! }
`);

function measure(query: string) {
  const document = parse(query);
  const operation = document.definitions.find((definition) => definition.kind === 'OperationDefinition') as OperationDefinitionNode;
  return measureOperation(schema, document, operation);
}

describe('measureOperation', () => {
  it('counts depth, distinct fields, aliases and root fields of a plain query', () => {
    expect(measure('{ a: nodes { id name children { id } } node(id: 1) { id } }')).toEqual({
      depth: 3,
      height: 5,
      aliases: 1,
      rootFields: 2,
      introspection: false,
    });
  });

  it('counts the same field twice under aliases once in height', () => {
    expect(measure('{ nodes { a: id b: id c: name } }')).toMatchObject({ height: 3, aliases: 3 });
  });

  it('counts through named and inline fragments as if they were written out', () => {
    const shape = measure(`
      { ...Root }
      fragment Root on Query { nodes { ...Deep } x: nodes { id } }
      fragment Deep on Node { children { ... on Node { children { k: id } } } }
    `);
    expect(shape).toMatchObject({ depth: 4, aliases: 2, rootFields: 2 });
  });

  it('counts a fragment once per spread for aliases, and measures an exponential fragment bomb in linear time', () => {
    const levels = 30;
    const fragments = Array.from({ length: levels }, (_, i) =>
      i === levels - 1 ? `fragment F${i} on Node { a: id }` : `fragment F${i} on Node { ...F${i + 1} ... on Node { ...F${i + 1} } }`,
    ).join('\n');
    const startedAt = performance.now();
    const shape = measure(`{ nodes { ...F0 } } ${fragments}`);
    expect(performance.now() - startedAt).toBeLessThan(1_000);
    expect(shape.aliases).toBe(2 ** (levels - 1));
    expect(shape.height).toBe(2);
  });

  it('finds introspection hidden in fragments, and not __typename', () => {
    expect(measure('{ ...Q } fragment Q on Query { ... on Query { __schema { queryType { name } } } }').introspection).toBe(true);
    expect(measure('{ __type(name: "Node") { name } }').introspection).toBe(true);
    expect(measure('{ __typename nodes { __typename } }').introspection).toBe(false);
  });

  it("measures GraphiQL's introspection query within the default limits", () => {
    const shape = measure(getIntrospectionQuery());
    expect(shape.introspection).toBe(true);
    expect(shape.depth).toBeLessThanOrEqual(20);
    expect(shape.aliases).toBe(0);
  });

  it('survives a fragment cycle (validation refuses it later)', () => {
    expect(measure('{ nodes { ...A } } fragment A on Node { parent { ...B } } fragment B on Node { parent { ...A } }').depth).toBeGreaterThan(0);
  });
});
