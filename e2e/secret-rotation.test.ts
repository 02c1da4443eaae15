/**
 * Issue 15, Secrets custody, end to end: `secrets:rotate` for the API-key
 * pepper and for the internal-JWT keys while requests keep flowing, by a
 * person and by an API key, through the gateway. Nothing may fail across
 * either rotation; the old key is re-hashed with the new pepper at its next
 * use, and the old pepper version goes only once no stored hash uses it.
 */
import { readFile } from 'node:fs/promises';
import { runRotate } from '@aifactory/secrets';
import { readPepperFile } from '@aifactory/service-auth';
import { eventually } from './support/eventually.js';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

const PROJECT = 'query P($id: ID!) { project(id: $id) { id } }';

describe('secrets:rotate with requests in flight', () => {
  let t: TestPlatform;
  let admin: string;
  let projectId: string;
  let keyId: string;
  let key: string;

  const ok = async (assertion: string, query: string, variables: Record<string, unknown> = {}) => {
    const { status, body } = await t.graphql({ query, variables, assertion });
    if (status !== 200 || body.errors) throw new Error(`${status} ${JSON.stringify(body)}`);
    return body.data;
  };

  /** Requests by the admin and by the key, back to back, until stopped; every failure kept with its answer. */
  const traffic = () => {
    let running = true;
    const failures: string[] = [];
    let succeeded = 0;
    const loop = (async () => {
      while (running) {
        const callers: Array<Record<string, string>> = [{ 'x-pomerium-jwt-assertion': admin }, { authorization: `Bearer ${key}` }];
        for (const headers of callers) {
          const { status, body } = await t.graphql({ query: PROJECT, variables: { id: projectId }, headers });
          if (status === 200 && !body.errors && body.data.project?.id === projectId) succeeded += 1;
          else failures.push(`${status} ${JSON.stringify(body)}`);
        }
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        return { failures, succeeded };
      },
    };
  };
  const rotate = async (args: string[], env: Record<string, string>) => {
    const out: string[] = [];
    const code = await runRotate(args, { ...process.env, ...env }, { out: (line) => out.push(line), err: (line) => out.push(line) });
    return { code, out: out.join('\n') };
  };
  const storedPepperVersion = async () => {
    const client = await t.db.admin();
    const { rows } = await client.query<{ pepper_version: number }>('SELECT pepper_version FROM iam.api_keys WHERE key_id = $1', [keyId]);
    return rows[0]?.pepper_version;
  };

  beforeAll(async () => {
    t = await startTestPlatform({ gatewayOverrides: { INTERNAL_JWT_KEY_RELOAD_MS: '200', API_KEY_PEPPER_RELOAD_MS: '200', API_KEY_USAGE_FLUSH_MS: '100' } });
    admin = await t.adminAssertion();
    const orgId = (await ok(admin, 'mutation { createOrganization(input: { slug: "rotation", name: "Rotation", billingCurrency: "EUR" }) { id } }')).createOrganization.id;
    const departmentId = (await ok(admin, 'mutation D($o: ID!) { createDepartment(organizationId: $o, slug: "ops", name: "Ops") { id } }', { o: orgId })).createDepartment.id;
    projectId = (await ok(admin, 'mutation P($d: ID!) { createProject(departmentId: $d, slug: "keys", name: "Keys") { id } }', { d: departmentId })).createProject.id;
    const accountId = (await ok(admin, 'mutation A($p: ID!) { createServiceAccount(input: { projectId: $p, name: "rotator" }) { id } }', { p: projectId }))
      .createServiceAccount.id;
    const created = (await ok(admin, 'mutation K($a: ID!) { createApiKey(input: { serviceAccountId: $a, scopes: ["platform:project:read"] }) { secret apiKey { id } } }', { a: accountId }))
      .createApiKey;
    key = created.secret;
    keyId = created.apiKey.id;
    await eventually(async () => expect((await t.graphql({ query: PROJECT, variables: { id: projectId }, headers: { authorization: `Bearer ${key}` } })).status).toBe(200), 5_000);
  }, 120_000);

  afterAll(async () => {
    await t?.close();
  });

  it('rotates the pepper with no failed request, re-hashes the key at its next use, then prunes the old version', async () => {
    expect(await storedPepperVersion()).toBe(1);
    const env = { API_KEY_PEPPER_FILE: t.apiKeyPepperFile, IAM_DATABASE_URL: t.db.appUrl('iam') };
    const load = traffic();
    const rotation = await rotate(['api-key-pepper', '--settle-ms', '500'], env);
    // The key still uses version 1 at prune time unless it was re-hashed meanwhile: either way nothing in use goes.
    await eventually(async () => expect(await storedPepperVersion()).toBe(2), 10_000);
    const { failures, succeeded } = await load.stop();
    expect(rotation.code).toBe(0);
    expect(failures).toEqual([]);
    expect(succeeded).toBeGreaterThan(10);

    const pruned = await rotate(['api-key-pepper', '--prune-only'], env);
    expect(pruned.code).toBe(0);
    expect(Object.keys((await readPepperFile(t.apiKeyPepperFile)).versions)).toEqual(['2']);
    // Pruned and re-read: the key keeps working on version 2 alone.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await t.graphql({ query: PROJECT, variables: { id: projectId }, headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    expect(rotation.out + pruned.out).not.toContain((await readPepperFile(t.apiKeyPepperFile)).versions['2']);
  }, 60_000);

  it('rotates the internal-JWT signing key with no failed request and retires the old public key', async () => {
    const before = await readFile(t.internalKeyFiles.privateKeyFile, 'utf8');
    const env = { INTERNAL_JWT_PRIVATE_KEY_FILE: t.internalKeyFiles.privateKeyFile, INTERNAL_JWT_PUBLIC_KEY_FILES: t.internalKeyFiles.publicKeyFile };
    const load = traffic();
    const rotation = await rotate(['internal-jwt-signing', '--publish-wait-ms', '500', '--overlap-ms', '2000'], env);
    // Keep going a while on the new key alone.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const { failures, succeeded } = await load.stop();
    expect(rotation.code).toBe(0);
    expect(failures).toEqual([]);
    expect(succeeded).toBeGreaterThan(10);
    expect(await readFile(t.internalKeyFiles.privateKeyFile, 'utf8')).not.toBe(before);
    const publicKeys = (await readFile(t.internalKeyFiles.publicKeyFile, 'utf8')).match(/BEGIN PUBLIC KEY/g) ?? [];
    expect(publicKeys).toHaveLength(1);
    expect(t.logs.lines().some((line) => line.service === 'gateway' && line.msg === 'internal JWT signing key reloaded')).toBe(true);
  }, 60_000);
});
