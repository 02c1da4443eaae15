import { getIntrospectionQuery } from 'graphql';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

const DEVELOPER_GROUPS = { groups: ['test-developers'] };

// Along organizations > edges > node, the hierarchy loops Organization > departments > edges > node > organization > ...
const LOOP = ['departments', 'edges', 'node', 'organization'];

/** A valid query whose deepest field is at `depth`; `__typename` ends it whatever type it stops on. */
function nested(depth: number, firstOnOrganization = ''): string {
  const path = ['organizations', 'edges', 'node'];
  while (path.length < depth - 1) path.push(LOOP[(path.length - 3) % LOOP.length] ?? '');
  let selection = '__typename';
  for (let level = path.length - 1; level >= 0; level -= 1) selection = `${path[level]} { ${level === 2 ? firstOnOrganization : ''}${selection} }`;
  return `{ ${selection} }`;
}

/** Selects on each organization of the first page. */
const onOrganizations = (selection: string) => `{ organizations { edges { node { ${selection} } } } }`;

describe('operation limits, checked before planning', () => {
  let t: TestPlatform;
  beforeAll(async () => {
    // Height is the only limit this schema is too small to reach at its default.
    t = await startTestPlatform({ gatewayOverrides: { GRAPHQL_MAX_HEIGHT: '10' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  const aliases = (count: number, prefix = 'a') => Array.from({ length: count }, (_, i) => `${prefix}${i}: id`).join(' ');
  const cases: Array<[string, () => { query?: string; rawBody?: string }, number, string]> = [
    ['depth 21', () => ({ query: nested(21) }), 400, 'GRAPHQL_DEPTH_LIMIT_EXCEEDED'],
    ['depth 21 hidden in a chain of fragments', () => ({
      // Organization at 3; each pair of fragments climbs 4 (departments > edges > node, then organization) to one at 19; the last adds 2.
      query: `{ organizations { edges { node { ...D1 } } } } ${Array.from({ length: 9 }, (_, i) =>
        i === 8
          ? `fragment D9 on Organization { departments { __typename } }`
          : i % 2 === 0
            ? `fragment D${i + 1} on Organization { departments { edges { node { ...D${i + 2} } } } }`
            : `fragment D${i + 1} on Department { organization { ...D${i + 2} } }`).join(' ')}`,
    }), 400, 'GRAPHQL_DEPTH_LIMIT_EXCEEDED'],
    ['11 distinct fields (height)', () => ({
      query: '{ organizations { edges { cursor node { id slug name billingCurrency status createdAt myRoles } } } }',
    }), 400, 'GRAPHQL_HEIGHT_LIMIT_EXCEEDED'],
    ['31 aliases', () => ({ query: onOrganizations(aliases(31)) }), 400, 'GRAPHQL_ALIAS_LIMIT_EXCEEDED'],
    ['31 aliases from one fragment spread twice', () => ({
      query: `${onOrganizations('...A ... on Organization { ...A x: id }')} fragment A on Organization { ${aliases(15)} }`,
    }), 400, 'GRAPHQL_ALIAS_LIMIT_EXCEEDED'],
    ['21 root fields', () => ({ query: `{ ${Array.from({ length: 21 }, (_, i) => `r${i}: organizations { edges { cursor } }`).join(' ')} }` }), 400, 'GRAPHQL_ROOT_FIELD_LIMIT_EXCEEDED'],
    ['21 root fields through a fragment on Query', () => ({
      query: `{ ...R } fragment R on Query { ${Array.from({ length: 21 }, (_, i) => `r${i}: __typename`).join(' ')} }`,
    }), 400, 'GRAPHQL_ROOT_FIELD_LIMIT_EXCEEDED'],
    // 11 tokens around the ids: `{ organizations { edges { node {` and `} } } }`.
    ['15,001 tokens', () => ({ query: onOrganizations('id '.repeat(14_990)) }), 400, 'GRAPHQL_TOKEN_LIMIT_EXCEEDED'],
    ['a body over 2 MB', () => ({ rawBody: JSON.stringify({ query: `${onOrganizations('id')}${' '.repeat(2 * 1024 * 1024)}` }) }), 413, 'BAD_REQUEST_BODY_TOO_LARGE'],
  ];

  it.each(cases)('refuses %s with its own code and calls no subgraph', async (_name, build, status, code) => {
    const hitsBefore = t.subgraphHits();
    const res = await t.graphql({ ...build(), assertion: await t.adminAssertion() });
    expect(res.status).toBe(status);
    expect(res.body.errors[0].extensions).toEqual({ code, correlationId: res.headers.get('x-correlation-id') });
    expect(t.subgraphHits()).toBe(hitsBefore);
  });

  it('lets a query at exactly the limits through', async () => {
    // Depth 20, 10 distinct fields, 20 root fields, 30 aliases: the 20 roots and an aliased id in half of them.
    const root = (i: number) => `r${i}: ${nested(20, `${i < 10 ? 'a: ' : ''}id name `).slice(2, -2)}`;
    const query = `{ ${Array.from({ length: 20 }, (_, i) => root(i)).join(' ')} }`;
    const res = await t.graphql({ query, assertion: await t.adminAssertion() });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`r${i}`, { edges: [] }])) });
  });
});

describe('introspection by role', () => {
  let t: TestPlatform;
  beforeAll(async () => {
    t = await startTestPlatform();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("passes GraphiQL's full introspection query for an internal developer", async () => {
    const res = await t.graphql({ query: getIntrospectionQuery(), assertion: await t.assertion(DEVELOPER_GROUPS) });
    expect(res.status).toBe(200);
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data.__schema.types.map((type: { name: string }) => type.name)).toContain('Organization');
  });

  it.each([
    ['__schema', '{ __schema { queryType { name } } }'],
    ['__type', '{ __type(name: "Organization") { name } }'],
    ['__schema inside a fragment', '{ ...Q } fragment Q on Query { __schema { types { name } } }'],
    ['__type inside an inline fragment', '{ ... on Query { __type(name: "Project") { fields { name } } } }'],
  ])('refuses %s to a user with no platform role, calling no subgraph', async (_name, query) => {
    const hitsBefore = t.subgraphHits();
    const res = await t.graphql({ query, assertion: await t.assertion() });
    expect(res.status).toBe(403);
    expect(res.body.errors[0].extensions.code).toBe('GRAPHQL_INTROSPECTION_FORBIDDEN');
    expect(t.subgraphHits()).toBe(hitsBefore);
  });

  it('answers __typename for anyone', async () => {
    const res = await t.graphql({ query: '{ __typename myOrganizations { __typename edges { node { __typename id } } } }', assertion: await t.assertion() });
    expect(res.body).toEqual({ data: { __typename: 'Query', myOrganizations: { __typename: 'OrganizationConnection', edges: [] } } });
  });

  it('serves the explorer from its own assets and the SDL to a developer, and neither to a user', async () => {
    const developer = { 'x-pomerium-jwt-assertion': await t.assertion(DEVELOPER_GROUPS) };
    const page = await fetch(`${t.platform.gatewayUrl}/explorer`, { headers: developer });
    expect(page.status).toBe(200);
    const html = await page.text();
    const sources = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] ?? '');
    expect(sources.length).toBeGreaterThanOrEqual(4);
    for (const source of sources) {
      expect(source.startsWith('/explorer/')).toBe(true);
      const asset = await fetch(`${t.platform.gatewayUrl}${source}`, { headers: developer });
      expect(asset.status).toBe(200);
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(50);
    }
    const sdl = await fetch(`${t.platform.gatewayUrl}/schema.graphql`, { headers: developer });
    expect(await sdl.text()).toContain('type Organization');

    const user = { 'x-pomerium-jwt-assertion': await t.assertion() };
    for (const path of ['/explorer', '/explorer/graphiql.js', '/schema.graphql']) {
      const refused = await fetch(`${t.platform.gatewayUrl}${path}`, { headers: user });
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('GRAPHQL_INTROSPECTION_FORBIDDEN');
    }
    expect((await fetch(`${t.platform.gatewayUrl}/schema.graphql`)).status).toBe(401);
  });
});
