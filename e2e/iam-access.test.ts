/**
 * Issue 14 end to end: memberships decide what people see, in iam and
 * through `can()` in a second subgraph; a removed membership stops working
 * on two gateway instances; subscriptions follow the same grants; registry
 * lifecycles reach every subgraph; the gateway keeps authorizing from its
 * read model while iam is down.
 */
import { createClient } from 'graphql-ws';
import { webSocketWithHeaders } from '@aifactory/testing';
import type { RunningGateway } from '@aifactory/gateway/server';
import { eventually } from './support/eventually.js';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

const ME = 'query Me { me { id } }';
const ORGANIZATION = 'query Org($id: ID!) { organization(id: $id) { id name } }';
const ACCOUNT = 'query Account($id: ID!) { organization(id: $id) { id account { currency } } }';
const SKUS = 'query Skus { skus { id } }';

interface Person {
  assertion: string;
  userId: string;
}

describe('IAM authorization across the platform', () => {
  let t: TestPlatform;
  let second: RunningGateway;
  let admin: string;
  let orgA: string;
  let orgB: string;
  let projectA: string;
  let alice: Person;
  let bob: Person;
  let carol: Person;

  const ok = async (assertion: string, query: string, variables: Record<string, unknown> = {}, gatewayUrl?: string) => {
    const { status, body } = await t.graphql({ query, variables, assertion, ...(gatewayUrl ? { gatewayUrl } : {}) });
    if (status !== 200 || body.errors) {
      // The failing request's own log lines (the cause chain is logged, never sent), so a failure explains itself.
      const correlationId = body.errors?.[0]?.extensions?.correlationId;
      const logged = t.logs.lines().filter((line) => line.correlationId === correlationId && line.level !== 'info');
      throw new Error(`${status} ${JSON.stringify(body)} ${JSON.stringify(logged)}`);
    }
    return body.data;
  };
  const person = async (subject: string, email: string): Promise<Person> => {
    const assertion = await t.assertion({ subject, email });
    const data = await ok(assertion, ME);
    return { assertion, userId: data.me.id };
  };
  const grant = async (userId: string, level: string, nodeId: string, role: string) =>
    (
      await ok(
        admin,
        'mutation Grant($u: ID!, $l: MembershipLevel!, $n: ID!, $r: String!) { grantRole(userId: $u, level: $l, nodeId: $n, role: $r) { id } }',
        { u: userId, l: level, n: nodeId, r: role },
      )
    ).grantRole.id as string;

  beforeAll(async () => {
    t = await startTestPlatform();
    second = await t.platform.startAnotherGateway();
    admin = await t.adminAssertion();
    const create = 'mutation Create($slug: String!) { createOrganization(input: { slug: $slug, name: $slug, billingCurrency: "EUR" }) { id } }';
    orgA = (await ok(admin, create, { slug: 'org-a' })).createOrganization.id;
    orgB = (await ok(admin, create, { slug: 'org-b' })).createOrganization.id;
    const department = (
      await ok(admin, 'mutation D($o: ID!) { createDepartment(organizationId: $o, slug: "research", name: "Research") { id } }', { o: orgA })
    ).createDepartment.id;
    projectA = (
      await ok(admin, 'mutation P($d: ID!) { createProject(departmentId: $d, slug: "llm", name: "LLM") { id } }', { d: department })
    ).createProject.id;
    alice = await person('alice', 'alice@example.com');
    bob = await person('bob', 'bob@example.com');
    carol = await person('carol', 'carol@example.com');
    await grant(alice.userId, 'ORGANIZATION', orgA, 'viewer');
    await grant(bob.userId, 'ORGANIZATION', orgB, 'org_admin');
    await grant(carol.userId, 'PROJECT', projectA, 'project_member');
  }, 120_000);

  afterAll(async () => {
    await t?.close();
  });

  it('shows each member their own organization and nothing of another, in iam and through can() in billing', async () => {
    await eventually(async () => expect((await ok(alice.assertion, ORGANIZATION, { id: orgA })).organization).toMatchObject({ id: orgA }), 5_000);
    expect((await ok(alice.assertion, ORGANIZATION, { id: orgB })).organization).toBeNull();
    expect((await ok(alice.assertion, ACCOUNT, { id: orgA })).organization.id).toBe(orgA);

    // A project member sees the organization it works in, but not the organization's money: billing's can() refuses.
    await eventually(async () => expect((await ok(carol.assertion, ORGANIZATION, { id: orgA })).organization).not.toBeNull(), 5_000);
    const money = await t.graphql({ query: ACCOUNT, variables: { id: orgA }, assertion: carol.assertion });
    expect(money.body.data.organization).toEqual({ id: orgA, account: null });
    expect(money.body.errors[0].extensions.code).toBe('AUTH_FORBIDDEN');

    const write = await t.graphql({
      query: 'mutation R($id: ID!) { renameOrganization(id: $id, name: "taken over") { id } }',
      variables: { id: orgA },
      assertion: bob.assertion,
    });
    expect(write.body.errors[0].extensions.code).toBe('AUTH_FORBIDDEN');
    expect((await ok(admin, ORGANIZATION, { id: orgA })).organization.name).toBe('org-a');
  });

  it('stops a removed membership on two gateway instances', async () => {
    const dave = await person('dave', 'dave@example.com');
    const membership = await grant(dave.userId, 'ORGANIZATION', orgA, 'viewer');
    for (const gatewayUrl of [t.platform.gatewayUrl, second.url]) {
      await eventually(async () => expect((await ok(dave.assertion, ORGANIZATION, { id: orgA }, gatewayUrl)).organization).not.toBeNull(), 5_000);
    }

    await ok(admin, 'mutation Remove($id: ID!) { removeMembership(membershipId: $id) { id } }', { id: membership });

    // With no grant left, the directive refuses before iam looks at the row.
    for (const gatewayUrl of [t.platform.gatewayUrl, second.url]) {
      await eventually(async () => {
        const { body } = await t.graphql({ query: ORGANIZATION, variables: { id: orgA }, assertion: dave.assertion, gatewayUrl });
        expect(body.data.organization).toBeNull();
        expect(body.errors[0].extensions.code).toBe('AUTH_FORBIDDEN');
      }, 10_000);
    }
  });

  it('gives a member of another organization nothing on organizationUpdated and ends a removed subscriber', async () => {
    const subscribe = (assertion: string) => {
      const client = createClient({
        url: `${t.platform.gatewayUrl.replace('http', 'ws')}/graphql`,
        webSocketImpl: webSocketWithHeaders({ 'x-pomerium-jwt-assertion': assertion }),
        retryAttempts: 0,
      });
      const results: Array<{ data?: unknown; errors?: Array<{ extensions?: { code?: string } }> }> = [];
      let failure: unknown;
      const done = new Promise<void>((resolve) => {
        client.subscribe(
          { query: 'subscription U($id: ID!) { organizationUpdated(id: $id) { id name } }', variables: { id: orgA } },
          {
            next: (value) => void results.push(value as (typeof results)[number]),
            error: (error) => {
              failure = error;
              resolve();
            },
            complete: () => resolve(),
          },
        );
      });
      return { client, results, done, failure: () => failure };
    };
    const erin = await person('erin', 'erin@example.com');
    const membership = await grant(erin.userId, 'ORGANIZATION', orgA, 'viewer');
    await eventually(async () => expect((await ok(erin.assertion, ORGANIZATION, { id: orgA })).organization).not.toBeNull(), 5_000);
    const member = subscribe(erin.assertion);
    const outsider = subscribe(bob.assertion);
    await outsider.done;
    const refused = outsider.results.flatMap((result) => result.errors ?? []).map((error) => error.extensions?.code);
    expect(outsider.results.some((result) => result.data)).toBe(false);
    expect(refused.length > 0 || outsider.failure() !== undefined).toBe(true);

    await eventually(async () => {
      await ok(admin, 'mutation R($id: ID!, $n: String!) { renameOrganization(id: $id, name: $n) { id } }', { id: orgA, n: `org-a ${Date.now()}` });
      expect(member.results.some((result) => result.data)).toBe(true);
    }, 10_000);
    await ok(admin, 'mutation Remove($id: ID!) { removeMembership(membershipId: $id) { id } }', { id: membership });
    await member.done;
    const last = member.results.at(-1);
    expect(last?.errors?.[0]?.extensions?.code).toBe('AUTH_FORBIDDEN');
    await member.client.dispose();
    await outsider.client.dispose();
  });

  it('honours and flags a deprecated scope in another subgraph, and refuses it once retired', async () => {
    const lifecycle = (value: string) =>
      ok(admin, 'mutation L($v: RegistryLifecycle!) { setScopeLifecycle(scope: "gpuaas:node:read", lifecycle: $v) { id } }', { v: value });
    expect((await ok(alice.assertion, SKUS)).skus).toEqual(expect.any(Array));

    await lifecycle('DEPRECATED');
    const metrics = () => fetch(t.platform.subgraphUrls.gpuaas!.replace('/graphql', '/metrics')).then((res) => res.text());
    await eventually(async () => {
      expect((await ok(alice.assertion, SKUS)).skus).toEqual(expect.any(Array));
      const flagged = (await metrics()).split('\n').filter((line) => line.startsWith('aif_authz_deprecated_scope_uses_total'));
      expect(flagged).toEqual([expect.stringMatching(/scope="gpuaas:node:read".* [1-9]/)]);
    }, 5_000);

    await lifecycle('RETIRED');
    await eventually(async () => {
      const { body } = await t.graphql({ query: SKUS, assertion: alice.assertion });
      expect(body.errors?.[0]?.extensions?.code).toBe('AUTH_SCOPE_RETIRED');
    }, 5_000);
    await lifecycle('ACTIVE');
    await eventually(async () => expect((await ok(alice.assertion, SKUS)).skus).toEqual(expect.any(Array)), 5_000);
  });

  it('keeps authorizing from the read model with iam stopped, and refuses a newcomer it cannot sign in', async () => {
    await t.platform.stopSubgraph('iam');

    expect((await ok(alice.assertion, SKUS)).skus).toEqual(expect.any(Array));
    const { body } = await t.graphql({ query: SKUS, assertion: carol.assertion });
    expect(body.errors).toBeUndefined();

    const stranger = await t.graphql({ query: SKUS, assertion: await t.assertion({ subject: 'frank', email: 'frank@example.com' }) });
    expect(stranger.status).toBe(503);
    expect(stranger.body.errors[0].extensions.code).toBe('IAM_UNAVAILABLE');
  });
});
