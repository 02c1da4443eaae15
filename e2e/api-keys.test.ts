/**
 * Issue 15 end to end: an API key works through the gateway for its scopes
 * and nothing else; revocation stops it on two gateway instances; expiry and
 * the end of a rotation's grace stop it; a real key id with a wrong secret is
 * only ever "unknown"; the creator's own scopes bound a new key; a revoked key
 * ends the subscriptions it opened.
 */
import { createClient, type Client } from 'graphql-ws';
import { webSocketWithHeaders } from '@aifactory/testing';
import type { RunningGateway } from '@aifactory/gateway/server';
import { issueApiKey, parseApiKey } from '@aifactory/service-auth';
import { eventually } from './support/eventually.js';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

const PROJECT = 'query P($id: ID!) { project(id: $id) { id name } }';
const ORGANIZATION = 'query O($id: ID!) { organization(id: $id) { id name } }';
const DEPARTMENT = 'query D($id: ID!) { department(id: $id) { id } }';
const CREATE_ACCOUNT = 'mutation A($input: CreateServiceAccountInput!) { createServiceAccount(input: $input) { id } }';
const CREATE_KEY = 'mutation K($input: CreateApiKeyInput!) { createApiKey(input: $input) { secret apiKey { id prefix status expiresAt scopes } } }';
const ROTATE_KEY =
  'mutation R($input: RotateApiKeyInput!) { rotateApiKey(input: $input) { secret apiKey { id status } previous { id status graceUntil } } }';
const REVOKE_KEY = 'mutation V($id: ID!) { revokeApiKey(id: $id, reason: "test") { id status revokedAt } }';

describe('API keys through the gateway', () => {
  let t: TestPlatform;
  let second: RunningGateway;
  let admin: string;
  let orgId: string;
  let projectId: string;
  let departmentId: string;
  let serviceAccountId: string;
  let member: string;

  const ok = async (assertion: string, query: string, variables: Record<string, unknown> = {}) => {
    const { status, body } = await t.graphql({ query, variables, assertion });
    if (status !== 200 || body.errors) throw new Error(`${status} ${JSON.stringify(body)}`);
    return body.data;
  };
  /** A request made with the key alone, as a program would. */
  const withKey = (key: string, query: string, variables: Record<string, unknown> = {}, gatewayUrl?: string) =>
    t.graphql({ query, variables, headers: { authorization: `Bearer ${key}` }, ...(gatewayUrl ? { gatewayUrl } : {}) });
  const codeOf = (answer: { body: any }) => answer.body?.errors?.[0]?.extensions?.code as string | undefined;
  const createKey = async (input: Record<string, unknown>, assertion = admin) =>
    (await ok(assertion, CREATE_KEY, { input: { serviceAccountId, ...input } })).createApiKey as { secret: string; apiKey: { id: string; status: string } };

  beforeAll(async () => {
    t = await startTestPlatform();
    second = await t.platform.startAnotherGateway();
    admin = await t.adminAssertion();
    orgId = (await ok(admin, 'mutation { createOrganization(input: { slug: "keys", name: "Keys", billingCurrency: "EUR" }) { id } }')).createOrganization.id;
    departmentId = (await ok(admin, 'mutation D($o: ID!) { createDepartment(organizationId: $o, slug: "ml", name: "ML") { id } }', { o: orgId }))
      .createDepartment.id;
    projectId = (await ok(admin, 'mutation P($d: ID!) { createProject(departmentId: $d, slug: "inference", name: "Inference") { id } }', { d: departmentId }))
      .createProject.id;
    serviceAccountId = (await ok(admin, CREATE_ACCOUNT, { input: { projectId, name: 'batch-jobs', labels: [{ key: 'team', value: 'ml' }] } })).createServiceAccount.id;
    member = await t.assertion({ subject: 'member', email: 'member@example.com' });
    const memberId = (await ok(member, '{ me { id } }')).me.id;
    await ok(admin, 'mutation G($u: ID!, $p: ID!) { grantRole(userId: $u, level: PROJECT, nodeId: $p, role: "project_admin") { id } }', { u: memberId, p: projectId });
  }, 120_000);

  afterAll(async () => {
    await t?.close();
  });

  it('works for its scopes and is refused for others, and stops after revoke on two gateway instances', async () => {
    const { secret, apiKey } = await createKey({ scopes: ['platform:project:read', 'platform:organization:read'] });
    expect(apiKey.status).toBe('ACTIVE');
    for (const gatewayUrl of [t.platform.gatewayUrl, second.url]) {
      await eventually(async () => expect((await withKey(secret, PROJECT, { id: projectId }, gatewayUrl)).body.data.project).toEqual({ id: projectId, name: 'Inference' }), 5_000);
    }
    // The request's one log line names the key and its service account, in the gateway and in iam.
    const lines = t.logs.lines().filter((line) => line.msg === 'request' && (line.actor as { keyId?: string } | undefined)?.keyId === apiKey.id);
    expect(new Set(lines.map((line) => line.service))).toEqual(new Set(['gateway', 'iam']));
    expect(lines[0]!.actor).toEqual({ type: 'service_account', id: serviceAccountId, keyId: apiKey.id });
    // Its own organization through the member-visible scope; its department needs platform:department:read, which it lacks.
    expect((await withKey(secret, ORGANIZATION, { id: orgId })).body.data.organization.id).toBe(orgId);
    const refused = await withKey(secret, DEPARTMENT, { id: departmentId });
    expect(refused.status).toBe(200);
    expect(codeOf(refused)).toBe('AUTH_FORBIDDEN');

    await ok(admin, REVOKE_KEY, { id: apiKey.id });
    for (const gatewayUrl of [t.platform.gatewayUrl, second.url]) {
      await eventually(async () => {
        const answer = await withKey(secret, PROJECT, { id: projectId }, gatewayUrl);
        expect(answer.status).toBe(401);
        expect(codeOf(answer)).toBe('AUTH_API_KEY_REVOKED');
      }, 10_000);
    }
  });

  it('reports a real key id with a wrong secret as unknown, before and after revoke', async () => {
    const { secret, apiKey } = await createKey({ scopes: ['platform:project:read'] });
    const parsed = parseApiKey(secret)!;
    // The same key id under a fresh secret with a valid checksum: only the secret is wrong.
    const forged = issueApiKey(parsed.environment, parsed.keyId).raw;
    await eventually(async () => expect((await withKey(secret, PROJECT, { id: projectId })).status).toBe(200), 5_000);
    const before = await withKey(forged, PROJECT, { id: projectId });
    expect([before.status, codeOf(before)]).toEqual([401, 'AUTH_API_KEY_UNKNOWN']);

    await ok(admin, REVOKE_KEY, { id: apiKey.id });
    await eventually(async () => expect(codeOf(await withKey(secret, PROJECT, { id: projectId }))).toBe('AUTH_API_KEY_REVOKED'), 10_000);
    const after = await withKey(forged, PROJECT, { id: projectId });
    expect([after.status, codeOf(after)]).toEqual([401, 'AUTH_API_KEY_UNKNOWN']);
    expect(JSON.stringify(after.body)).not.toContain(orgId);
    const garbage = await withKey('aif_live_not-a-key', PROJECT, { id: projectId });
    expect([garbage.status, codeOf(garbage)]).toEqual([401, 'AUTH_API_KEY_UNKNOWN']);
  });

  it('stops at its expiry', async () => {
    const { secret } = await createKey({ scopes: ['platform:project:read'], expiresAt: new Date(Date.now() + 4_000).toISOString() });
    await eventually(async () => expect((await withKey(secret, PROJECT, { id: projectId })).status).toBe(200), 3_000);
    await eventually(async () => {
      const answer = await withKey(secret, PROJECT, { id: projectId });
      expect([answer.status, codeOf(answer)]).toEqual([401, 'AUTH_API_KEY_EXPIRED']);
    }, 10_000);
  });

  it('keeps both keys of a rotation working during the grace, then only the new one', async () => {
    const { secret: old, apiKey } = await createKey({ scopes: ['platform:project:read'] });
    await eventually(async () => expect((await withKey(old, PROJECT, { id: projectId })).status).toBe(200), 5_000);
    const rotated = (await ok(admin, ROTATE_KEY, { input: { id: apiKey.id, graceSeconds: 4 } })).rotateApiKey;
    expect(rotated.previous).toMatchObject({ id: apiKey.id, status: 'ROTATING' });
    await eventually(async () => expect((await withKey(rotated.secret, PROJECT, { id: projectId })).status).toBe(200), 5_000);
    expect((await withKey(old, PROJECT, { id: projectId })).status).toBe(200);

    await eventually(async () => {
      const answer = await withKey(old, PROJECT, { id: projectId });
      expect([answer.status, codeOf(answer)]).toEqual([401, 'AUTH_API_KEY_ROTATED_OUT']);
    }, 12_000);
    expect((await withKey(rotated.secret, PROJECT, { id: projectId })).status).toBe(200);
  });

  it("refuses scopes above the creator's and a retired scope", async () => {
    const above = await t.graphql({ query: CREATE_KEY, variables: { input: { serviceAccountId, scopes: ['platform:project:create'] } }, assertion: member });
    expect(codeOf(above)).toBe('IAM_API_KEY_SCOPE_NOT_HELD');
    const lifecycle = (value: string) =>
      ok(admin, 'mutation L($v: RegistryLifecycle!) { setScopeLifecycle(scope: "platform:project:read", lifecycle: $v) { id } }', { v: value });
    await lifecycle('RETIRED');
    try {
      await eventually(async () => {
        const retired = await t.graphql({ query: CREATE_KEY, variables: { input: { serviceAccountId, scopes: ['platform:project:read'] } }, assertion: admin });
        expect(codeOf(retired)).toBe('AUTH_SCOPE_RETIRED');
      }, 5_000);
    } finally {
      await lifecycle('ACTIVE');
    }
  });

  it('ends the subscriptions a key opened once it is revoked', async () => {
    const { secret, apiKey } = await createKey({ scopes: ['platform:organization:read'] });
    await eventually(async () => expect((await withKey(secret, ORGANIZATION, { id: orgId })).status).toBe(200), 5_000);
    // A program sets the header on the upgrade, as on any request.
    const client: Client = createClient({
      url: t.platform.gatewayUrl.replace('http', 'ws') + '/graphql',
      webSocketImpl: webSocketWithHeaders({ authorization: `Bearer ${secret}` }),
      retryAttempts: 0,
      lazy: false,
    });
    try {
      const seen: unknown[] = [];
      const ended = new Promise<unknown>((resolve) => {
        client.subscribe(
          { query: 'subscription U($id: ID!) { organizationUpdated(id: $id) { id name } }', variables: { id: orgId } },
          { next: (value) => seen.push(value), error: (error) => resolve(error), complete: () => resolve('complete') },
        );
      });
      await ok(admin, 'mutation R($id: ID!) { renameOrganization(id: $id, name: "Keys renamed") { id } }', { id: orgId });
      await eventually(() => expect(seen.length).toBeGreaterThan(0), 10_000);
      expect(JSON.stringify(seen[0])).toContain('Keys renamed');

      await ok(admin, REVOKE_KEY, { id: apiKey.id });
      const outcome = await Promise.race([ended, new Promise((resolve) => setTimeout(() => resolve('still open'), 10_000))]);
      expect(outcome).not.toBe('still open');
      expect(JSON.stringify(seen.at(-1))).toMatch(/AUTH_API_KEY_REVOKED|AUTH_FORBIDDEN/);
    } finally {
      await client.dispose();
    }
  });
});
