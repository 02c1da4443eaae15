import type { SeedResult } from '@aifactory/devstack';
import { InternalTokenSigner, loadSigningKey } from '@aifactory/service-auth';
import { eventually } from './support/eventually.js';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

const JWT_SHAPE = /eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/;
const JOINED =
  '{ organizations { edges { node { id slug billingCurrency departments { edges { node { slug projects { edges { node { slug } } } } } } account { kind currency organization { slug } } } } } }';
const ORGANIZATIONS = '{ organizations { edges { node { id } } } }';
const MY_ORGANIZATIONS = '{ myOrganizations { edges { node { id } } } }';
/** Refused by @scopes: the caller holds platform:organization:read nowhere, so no subgraph row is read. */
const refusedWithoutGrant = { data: null, errors: [expect.objectContaining({ path: ['organizations'], extensions: expect.objectContaining({ code: 'AUTH_FORBIDDEN' }) })] };

describe('one request through the gateway', () => {
  let t: TestPlatform;
  let seeded: SeedResult;

  beforeAll(async () => {
    t = await startTestPlatform();
    seeded = await t.seed();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('joins iam and billing data in one query', async () => {
    const res = await t.graphql({ query: JOINED, assertion: await t.adminAssertion() });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      data: {
        organizations: {
          edges: [
            {
              node: {
                id: seeded.organizationId,
                slug: 'demo',
                billingCurrency: 'USD',
                departments: { edges: [{ node: { slug: 'research', projects: { edges: [{ node: { slug: 'llm-training' } }] } } }] },
                account: { kind: 'CUSTOMER_BALANCE', currency: 'USD', organization: { slug: 'demo' } },
              },
            },
          ],
        },
      },
    });
  });

  it('shows a user without a grant no organization: organizations is refused, their own list is empty', async () => {
    const assertion = await t.assertion();
    const res = await t.graphql({ query: ORGANIZATIONS, assertion });
    expect(res.body).toEqual(refusedWithoutGrant);
    expect(JSON.stringify(res.body)).not.toContain(seeded.organizationId);
    expect((await t.graphql({ query: MY_ORGANIZATIONS, assertion })).body).toEqual({ data: { myOrganizations: { edges: [] } } });
  });

  it('never forwards a client-sent internal token: as a bearer credential it is no API key, and the internal header is dropped', async () => {
    const signer = new InternalTokenSigner({ issuer: 'gateway', key: await loadSigningKey(t.internalKeyFiles.privateKeyFile) });
    const forged = await signer.mint({
      audience: 'iam',
      correlationId: 'forged-0001',
      principal: { type: 'user', subject: 'mallory', platformRoles: ['platform_admin'], grants: [] },
    });
    const assertion = await t.assertion();
    // A bearer credential alone decides the principal (an API key): a forged internal token is none, and goes nowhere.
    const asBearer = await t.graphql({ query: ORGANIZATIONS, assertion, headers: { authorization: `Bearer ${forged}` } });
    expect(asBearer.status).toBe(401);
    expect(asBearer.body.errors[0].extensions.code).toBe('AUTH_API_KEY_UNKNOWN');
    expect(JSON.stringify(asBearer.body)).not.toContain(seeded.organizationId);
    // In the internal header it is dropped: the forged platform_admin would see the seeded organization; the asserted user, holding no grant, is refused.
    const res = await t.graphql({ query: ORGANIZATIONS, assertion, headers: { 'x-internal-jwt': forged } });
    expect(res.body).toEqual(refusedWithoutGrant);
    expect(JSON.stringify(res.body)).not.toContain(seeded.organizationId);
  });

  it('carries one correlation id through gateway and subgraph logs, and logs no token', async () => {
    const correlationId = 'corr-test-0123456789';
    const assertion = await t.adminAssertion();
    const res = await t.graphql({ query: JOINED, assertion, headers: { 'x-correlation-id': correlationId } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-correlation-id')).toBe(correlationId);
    const mine = () => t.logs.lines().filter((line) => line.correlationId === correlationId);
    await eventually(() => {
      const services = new Set(mine().map((line) => line.service));
      expect(services).toEqual(new Set(['gateway', 'iam', 'billing']));
    });
    for (const raw of t.logs.raw()) {
      expect(raw).not.toContain(assertion);
      expect(raw).not.toMatch(JWT_SHAPE);
    }
  });

  it("passes a subgraph's refusal to the client with its own code and the request's correlation id", async () => {
    const res = await t.graphql({ query: '{ auditEvents(limit: 1000) { id } }', assertion: await t.adminAssertion() });
    expect(res.status).toBe(200);
    expect(res.body.data).toBeNull();
    expect(res.body.errors).toEqual([
      {
        message: 'limit Too big: expected number to be <=500',
        path: ['auditEvents'],
        extensions: { code: 'BAD_REQUEST_INVALID_INPUT', correlationId: res.headers.get('x-correlation-id') },
      },
    ]);
  });

  it('shows a member the organizations they hold a role in, and no other', async () => {
    const admin = await t.adminAssertion();
    const other = await t.graphql({ query: 'mutation { createOrganization(input: { slug: "other", name: "Other" }) { id } }', assertion: admin });
    const otherId = other.body.data.createOrganization.id as string;
    const member = await t.assertion({ subject: 'member-of-demo', email: 'member-of-demo@example.com' });
    const userId = (await t.graphql({ query: '{ me { id } }', assertion: member })).body.data.me.id as string;
    const granted = await t.graphql({
      query: 'mutation G($u: ID!, $o: ID!) { grantRole(userId: $u, level: ORGANIZATION, nodeId: $o, role: "viewer") { id } }',
      variables: { u: userId, o: seeded.organizationId },
      assertion: admin,
    });
    expect(granted.body.errors).toBeUndefined();
    const mine = { edges: [{ node: { id: seeded.organizationId } }] };
    // The grant reaches the gateway through iam's read model.
    await eventually(async () => expect((await t.graphql({ query: ORGANIZATIONS, assertion: member })).body).toEqual({ data: { organizations: mine } }), 5_000);
    expect((await t.graphql({ query: MY_ORGANIZATIONS, assertion: member })).body).toEqual({ data: { myOrganizations: mine } });
    const elsewhere = await t.graphql({ query: 'query O($id: ID!) { organization(id: $id) { id } }', variables: { id: otherId }, assertion: member });
    expect(elsewhere.body).toEqual({ data: { organization: null } });
  });

  it('replaces a correlation id that is not a plain token', async () => {
    for (const candidate of ['bad id", "level": "fatal', 'x'.repeat(300)]) {
      const res = await t.graphql({ query: MY_ORGANIZATIONS, assertion: await t.assertion(), headers: { 'x-correlation-id': candidate } });
      expect(res.headers.get('x-correlation-id')).toMatch(/^[0-9a-f]{8}-[0-9a-f-]{27}$/);
      expect(res.body.data).toEqual({ myOrganizations: { edges: [] } });
    }
  });
});

describe('bad input through the gateway', () => {
  let t: TestPlatform;
  beforeAll(async () => {
    t = await startTestPlatform();
  });
  afterAll(async () => {
    await t?.close();
  });

  const cases: Array<[string, (assertion: string) => Parameters<TestPlatform['graphql']>[0], number, string]> = [
    ['malformed JSON', (assertion) => ({ assertion, rawBody: '{"query": "{ organizations { edges { node { id } } }' }), 400, 'BAD_REQUEST_MALFORMED_JSON'],
    ['a wrong content type', (assertion) => ({ assertion, rawBody: ORGANIZATIONS, headers: { 'content-type': 'application/xml' } }), 415, 'BAD_REQUEST_UNSUPPORTED_CONTENT_TYPE'],
    // Apollo's CSRF prevention: a body a foreign site could post without a preflight.
    ['a simple cross-site content type', (assertion) => ({ assertion, rawBody: JSON.stringify({ query: ORGANIZATIONS }), headers: { 'content-type': 'text/plain' } }), 400, 'BAD_REQUEST_CSRF_PREFLIGHT_REQUIRED'],
    ['a body that is not an object', (assertion) => ({ assertion, rawBody: '[1, 2]' }), 400, 'GRAPHQL_BAD_REQUEST'],
    ['an unknown operation name', (assertion) => ({ assertion, query: `query A ${ORGANIZATIONS}`, operationName: 'B' }), 400, 'GRAPHQL_UNKNOWN_OPERATION'],
    ['a query that does not parse', (assertion) => ({ assertion, query: '{ organizations { edges { node { id ' }), 400, 'GRAPHQL_PARSE_FAILED'],
    ['a query that does not validate', (assertion) => ({ assertion, query: '{ organizations { edges { node { nope } } } }' }), 400, 'GRAPHQL_VALIDATION_FAILED'],
  ];

  it.each(cases)('answers %s with a stable code, the correlation id and no stack, calling no subgraph', async (_name, build, status, code) => {
    const hitsBefore = t.subgraphHits();
    const res = await t.graphql(build(await t.adminAssertion()));
    expect(res.status).toBe(status);
    expect(res.body.errors).toHaveLength(1);
    expect(res.body.errors[0].extensions).toEqual({ code, correlationId: res.headers.get('x-correlation-id') });
    expect(JSON.stringify(res.body)).not.toMatch(/stacktrace|\n\s+at /);
    expect(t.subgraphHits()).toBe(hitsBefore);
  });

  it('answers a GET on /graphql with 405 and an unknown path with 404', async () => {
    const get = await fetch(`${t.platform.gatewayUrl}/graphql`);
    expect(get.status).toBe(405);
    expect(((await get.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST_METHOD_NOT_ALLOWED');
    const missing = await fetch(`${t.platform.gatewayUrl}/nothing-here`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });
});
