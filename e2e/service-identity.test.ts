/**
 * Issue 15, Service identity, end to end: a service's public key registered
 * with iam by the dev seed, tokens it mints for billing accepted there and
 * refused by gpuaas, and a platform admin's emergency disable through the
 * gateway refusing them at once, until enabled again.
 */
import { loadSigningKey, ServiceTokenIssuer } from '@aifactory/service-auth';
import { runDevSeed } from '@aifactory/devstack';
import { eventually } from './support/eventually.js';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

/** billing extends iam's Organization: asked directly, as the gateway's query plan would, through `_entities`. */
const ACCOUNT = 'query A($r: [_Any!]!) { _entities(representations: $r) { ... on Organization { id account { currency } } } }';

describe('service identity', () => {
  let t: TestPlatform;
  let admin: string;
  let issuer: ServiceTokenIssuer;
  let organizationId: string;

  /** A call straight to a subgraph, as one service calls another (never through the gateway). */
  const callAs = async (subgraph: string, audience: string, scopes: string[] = ['platform:billing:read']) => {
    const token = await issuer.mint({ audience, scopes, correlationId: `svc-${Date.now()}` });
    const res = await fetch(t.platform.subgraphUrls[subgraph]!, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: ACCOUNT, variables: { r: [{ __typename: 'Organization', id: organizationId }] } }),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const code = (answer: { body: any }) => answer.body?.errors?.[0]?.extensions?.code ?? answer.body?.error?.code;

  beforeAll(async () => {
    t = await startTestPlatform();
    admin = await t.adminAssertion();
    const credential = await t.keys.ed25519('service-tokenfactory');
    const seeded = await runDevSeed(t.db.layout, { eventSubjectPrefix: t.eventSubjectPrefix, serviceCredentialFiles: { tokenfactory: credential.privateKeyFile } });
    organizationId = seeded.organizationId;
    issuer = new ServiceTokenIssuer({ service: 'tokenfactory', key: await loadSigningKey(credential.privateKeyFile) });
  }, 120_000);

  afterAll(async () => {
    await t?.close();
  });

  it('lets billing serve a token minted for billing, and gpuaas refuse it', async () => {
    await eventually(async () => {
      const answer = await callAs('billing', 'billing');
      expect(answer.status).toBe(200);
      expect(answer.body.data._entities[0]).toMatchObject({ id: organizationId, account: { currency: expect.any(String) } });
    }, 10_000);
    const elsewhere = await callAs('gpuaas', 'billing');
    expect(elsewhere.status).toBe(401);
    expect(code(elsewhere)).toBe('INTERNAL_AUTH_UNAUTHENTICATED');
    // Addressed to gpuaas, which its identity may not call.
    const notAllowed = await callAs('gpuaas', 'gpuaas');
    expect([notAllowed.status, code(notAllowed)]).toEqual([403, 'INTERNAL_AUTH_AUDIENCE_NOT_ALLOWED']);
    // A scope its identity does not hold.
    const tooMuch = await callAs('billing', 'billing', ['platform:billing:manage']);
    expect([tooMuch.status, code(tooMuch)]).toEqual([403, 'INTERNAL_AUTH_SCOPE_NOT_ALLOWED']);
    const logged = t.logs.lines().filter((line) => line.msg === 'service call' && line.service === 'billing');
    expect(logged.length).toBeGreaterThan(0);
    expect(JSON.stringify(logged.at(-1))).toContain('tokenfactory');
    const requestLine = t.logs.lines().find((line) => line.service === 'billing' && line.msg === 'request' && (line.actor as { type?: string } | undefined)?.type === 'service');
    expect(requestLine?.actor).toEqual({ type: 'service', id: 'tokenfactory' });
  });

  it('refuses a disabled service identity at once and accepts it again once enabled', async () => {
    await eventually(async () => expect((await callAs('billing', 'billing')).status).toBe(200), 10_000);
    const disable = await t.graphql({
      query: 'mutation D { disableServiceIdentity(name: "tokenfactory", reason: "key leaked in a build log") { name status } }',
      assertion: admin,
    });
    expect(disable.body.data.disableServiceIdentity).toEqual({ name: 'tokenfactory', status: 'DISABLED' });
    const disabledAt = Date.now();
    await eventually(async () => {
      const answer = await callAs('billing', 'billing');
      expect([answer.status, code(answer)]).toEqual([401, 'INTERNAL_AUTH_SERVICE_DISABLED']);
    }, 5_000);
    // "At once": the read model carries it in milliseconds; a second is generous on a busy machine.
    expect(Date.now() - disabledAt).toBeLessThan(1_000);

    const enable = await t.graphql({ query: 'mutation E { enableServiceIdentity(name: "tokenfactory") { status } }', assertion: admin });
    expect(enable.body.data.enableServiceIdentity.status).toBe('ACTIVE');
    await eventually(async () => expect((await callAs('billing', 'billing')).status).toBe(200), 5_000);
  });
});
