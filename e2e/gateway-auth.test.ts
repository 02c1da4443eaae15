import { generateAssertionKey } from '@aifactory/dev-identity';
import { eventually } from './support/eventually.js';
import { hmacWithPublicKey, unsignedAssertion } from './support/forge.js';
import { AUDIENCE, ISSUER, startTestPlatform, type TestPlatform } from './support/test-platform.js';

// Every signed-in human may ask for their own organizations; one holding no role yet gets an empty page.
const QUERY = '{ myOrganizations { edges { node { id } } } }';
const NO_ORGANIZATIONS = { myOrganizations: { edges: [] } };

describe('gateway authentication', () => {
  let t: TestPlatform;

  beforeAll(async () => {
    t = await startTestPlatform();
  });
  afterAll(async () => {
    await t?.close();
  });

  async function expectRefusedWithoutSubgraphCall(assertion: string | undefined): Promise<void> {
    const hitsBefore = t.subgraphHits();
    const res = await t.graphql({ query: QUERY, ...(assertion === undefined ? {} : { assertion }) });
    expect(res.status).toBe(401);
    expect(res.body.errors[0].extensions.code).toBe('AUTH_UNAUTHENTICATED');
    expect(res.body.errors[0].extensions.correlationId).toBe(res.headers.get('x-correlation-id'));
    expect(res.body.data).toBeUndefined();
    expect(t.subgraphHits()).toBe(hitsBefore);
  }

  it('answers 401 without an assertion and calls no subgraph', async () => {
    await expectRefusedWithoutSubgraphCall(undefined);
  });

  it('answers 401 to an assertion signed by a key that is not in the JWKS', async () => {
    const impostor = await generateAssertionKey(t.assertionKey.kid);
    await expectRefusedWithoutSubgraphCall(await t.assertion({}, impostor));
  });

  it('answers 401 to an assertion from another issuer', async () => {
    await expectRefusedWithoutSubgraphCall(await t.assertion({ issuer: 'https://authenticate.evil.example' }));
  });

  it('answers 401 to an assertion for another audience', async () => {
    await expectRefusedWithoutSubgraphCall(await t.assertion({ audience: 'other-app.example' }));
  });

  it('answers 401 to an expired assertion', async () => {
    await expectRefusedWithoutSubgraphCall(await t.assertion({ expiresInSeconds: -120 }));
  });

  it('answers 401 to an unsigned assertion (alg: none)', async () => {
    await expectRefusedWithoutSubgraphCall(unsignedAssertion(t.assertionKey.kid, ISSUER, AUDIENCE));
  });

  it('answers 401 to an HS256 assertion keyed with the public key', async () => {
    await expectRefusedWithoutSubgraphCall(hmacWithPublicKey(t.assertionKey, ISSUER, AUDIENCE));
  });

  it('answers 401 to garbage in the assertion header', async () => {
    await expectRefusedWithoutSubgraphCall('not-a-jwt');
  });

  it('serves a valid assertion and calls the subgraph', async () => {
    const hitsBefore = t.subgraphHits();
    const res = await t.graphql({ query: QUERY, assertion: await t.assertion() });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ data: NO_ORGANIZATIONS });
    await eventually(() => expect(t.subgraphHits()).toBe(hitsBefore + 1));
  });

  it('passes an authenticated user without the scope on to the subgraph, which refuses the field, not the request', async () => {
    const hitsBefore = t.subgraphHits();
    const res = await t.graphql({ query: '{ organizations { edges { node { id } } } }', assertion: await t.assertion() });
    expect(res.status).toBe(200);
    expect(res.body.data).toBeNull();
    expect(res.body.errors).toMatchObject([{ path: ['organizations'], extensions: { code: 'AUTH_FORBIDDEN' } }]);
    await eventually(() => expect(t.subgraphHits()).toBe(hitsBefore + 1));
  });

  it('accepts a key published later under a new kid without a restart', async () => {
    const rotated = await generateAssertionKey();
    const before = await t.graphql({ query: QUERY, assertion: await t.assertion({}, rotated) });
    expect(before.status).toBe(401);
    t.jwks.publish(rotated);
    const after = await t.graphql({ query: QUERY, assertion: await t.assertion({}, rotated) });
    expect(after.status).toBe(200);
    expect(after.body.data).toEqual(NO_ORGANIZATIONS);
  });

  it('is ready once the supergraph and the JWKS are loaded', async () => {
    const ready = await fetch(`${t.platform.gatewayUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });
    const health = await fetch(`${t.platform.gatewayUrl}/healthz`);
    expect(health.status).toBe(200);
  });
});
