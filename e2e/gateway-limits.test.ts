import { getIntrospectionQuery } from 'graphql';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

const DEVELOPER_GROUPS = { groups: ['test-developers'] };

function nested(depth: number): string {
  // organizations(1) > departments(2) > organization(3) > ... > id(depth)
  let selection = 'id';
  for (let level = depth - 1; level >= 2; level -= 1) selection = `${level % 2 === 0 ? 'departments' : 'organization'} { ${selection} }`;
  return `{ organizations { ${selection} } }`;
}

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
      query: `{ organizations { ...D1 } } ${Array.from({ length: 19 }, (_, i) =>
        `fragment D${i + 1} on ${i % 2 === 0 ? 'Organization' : 'Department'} { ${i % 2 === 0 ? 'departments' : 'organization'} { ${i === 18 ? 'id' : `...D${i + 2}`} } }`).join(' ')}`,
    }), 400, 'GRAPHQL_DEPTH_LIMIT_EXCEEDED'],
    ['11 distinct fields (height)', () => ({ query: '{ organizations { id slug name billingCurrency status createdAt departments { id slug name status } } }' }), 400, 'GRAPHQL_HEIGHT_LIMIT_EXCEEDED'],
    ['31 aliases', () => ({ query: `{ organizations { ${aliases(31)} } }` }), 400, 'GRAPHQL_ALIAS_LIMIT_EXCEEDED'],
    ['31 aliases from one fragment spread twice', () => ({
      query: `{ organizations { ...A ... on Organization { ...A } } } fragment A on Organization { ${aliases(16)} }`,
    }), 400, 'GRAPHQL_ALIAS_LIMIT_EXCEEDED'],
    ['21 root fields', () => ({ query: `{ ${Array.from({ length: 21 }, (_, i) => `r${i}: organizations { id }`).join(' ')} }` }), 400, 'GRAPHQL_ROOT_FIELD_LIMIT_EXCEEDED'],
    ['21 root fields through a fragment on Query', () => ({
      query: `{ ...R } fragment R on Query { ${Array.from({ length: 21 }, (_, i) => `r${i}: __typename`).join(' ')} }`,
    }), 400, 'GRAPHQL_ROOT_FIELD_LIMIT_EXCEEDED'],
    ['15,001 tokens', () => ({ query: `{ organizations { ${'id '.repeat(14_997)}} }` }), 400, 'GRAPHQL_TOKEN_LIMIT_EXCEEDED'],
    ['a body over 2 MB', () => ({ rawBody: JSON.stringify({ query: `{ organizations { id } }${' '.repeat(2 * 1024 * 1024)}` }) }), 413, 'BAD_REQUEST_BODY_TOO_LARGE'],
  ];

  it.each(cases)('refuses %s with its own code and calls no subgraph', async (_name, build, status, code) => {
    const hitsBefore = t.subgraphHits();
    const res = await t.graphql({ ...build(), assertion: await t.adminAssertion() });
    expect(res.status).toBe(status);
    expect(res.body.errors[0].extensions).toEqual({ code, correlationId: res.headers.get('x-correlation-id') });
    expect(t.subgraphHits()).toBe(hitsBefore);
  });

  it('lets a query at exactly the limits through', async () => {
    const res = await t.graphql({ query: nested(20).replace('{ organizations {', '{ organizations { id'), assertion: await t.adminAssertion() });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: { organizations: [] } });
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
    const res = await t.graphql({ query: '{ __typename organizations { __typename id } }', assertion: await t.assertion() });
    expect(res.body).toEqual({ data: { __typename: 'Query', organizations: [] } });
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
