/**
 * Issue 15: a key's secret is shown once and then exists nowhere the
 * platform writes: not in the database (the whole of it, as pg_dump writes
 * it), not in any JetStream stream or KV bucket of the run, not in Redis
 * (every key, BullMQ's included, with its value), not in any process's log
 * output; nor any 16-character piece of it. Also when the key was created and
 * rotated with an `Idempotency-Key` header. The pepper and the internal-JWT
 * private key are looked for the same way.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { issueApiKey, parseApiKey, readPepperFile } from '@aifactory/service-auth';
import { eventually } from './support/eventually.js';
import { databaseDump, jetStreamDump, logDump, redisDump, secretPieces, type Haystack } from './support/secret-scan.js';
import { startTestPlatform, type TestPlatform } from './support/test-platform.js';

const PROJECT = 'query P($id: ID!) { project(id: $id) { id } }';
const DEPARTMENT = 'query D($id: ID!) { department(id: $id) { id } }';

describe('API key secrets after creation', () => {
  let t: TestPlatform;

  afterAll(async () => {
    await t?.close();
  });

  it('are found nowhere: database, streams and buckets, Redis, logs', async () => {
    t = await startTestPlatform({ gatewayOverrides: { API_KEY_USAGE_FLUSH_MS: '100' } });
    const admin = await t.adminAssertion();
    const ok = async (query: string, variables: Record<string, unknown> = {}, headers: Record<string, string> = {}) => {
      const { status, body } = await t.graphql({ query, variables, assertion: admin, headers });
      if (status !== 200 || body.errors) throw new Error(`${status} ${JSON.stringify(body)}`);
      return body.data;
    };
    const orgId = (await ok('mutation { createOrganization(input: { slug: "leaks", name: "Leaks", billingCurrency: "EUR" }) { id } }')).createOrganization.id;
    const departmentId = (await ok('mutation D($o: ID!) { createDepartment(organizationId: $o, slug: "sec", name: "Sec") { id } }', { o: orgId })).createDepartment.id;
    const projectId = (await ok('mutation P($d: ID!) { createProject(departmentId: $d, slug: "scan", name: "Scan") { id } }', { d: departmentId })).createProject.id;
    const accountId = (await ok('mutation A($p: ID!) { createServiceAccount(input: { projectId: $p, name: "scanner" }) { id } }', { p: projectId })).createServiceAccount.id;

    const createKey = 'mutation K($a: ID!) { createApiKey(input: { serviceAccountId: $a, scopes: ["platform:project:read"] }) { secret apiKey { id } } }';
    const idempotencyKey = randomUUID();
    const created = (await ok(createKey, { a: accountId }, { 'idempotency-key': idempotencyKey })).createApiKey;
    const first: string = created.secret;
    const keyId: string = created.apiKey.id;
    // The same Idempotency-Key again: the answer is not replayed, because it held a secret.
    const replay = await t.graphql({ query: createKey, variables: { a: accountId }, assertion: admin, headers: { 'idempotency-key': idempotencyKey } });
    expect(replay.body.errors[0].extensions.code).toBe('IDEMPOTENCY_SECRET_ALREADY_SHOWN');
    expect(JSON.stringify(replay.body)).not.toContain(parseApiKey(first)!.secret.slice(0, 16));

    const withKey = (key: string, query = PROJECT, variables: Record<string, unknown> = { id: projectId }) =>
      t.graphql({ query, variables, headers: { authorization: `Bearer ${key}` } });
    await eventually(async () => expect((await withKey(first)).status).toBe(200), 5_000);
    await withKey(first, DEPARTMENT, { id: departmentId });
    await withKey(issueApiKey(parseApiKey(first)!.environment, keyId).raw);

    const rotated = (
      await ok('mutation R($id: ID!) { rotateApiKey(input: { id: $id, graceSeconds: 60 }) { secret } }', { id: keyId }, { 'idempotency-key': randomUUID() })
    ).rotateApiKey;
    const second: string = rotated.secret;
    await eventually(async () => expect((await withKey(second)).status).toBe(200), 5_000);
    await ok('mutation V($id: ID!) { revokeApiKey(id: $id) { id } }', { id: keyId });
    await eventually(async () => expect((await withKey(first)).body.errors?.[0]?.extensions?.code).toBe('AUTH_API_KEY_REVOKED'), 5_000);

    // Everything has had its chance to be written: last use reported, the outbox relayed, the refusal audited.
    let haystacks: Haystack[] = [];
    await eventually(async () => {
      const [database, streams] = await Promise.all([databaseDump(t.db), jetStreamDump(t.eventSubjectPrefix)]);
      haystacks = [...database, ...streams, ...(await redisDump()), ...logDump(t.logs)];
      const text = (source: string) => haystacks.filter((haystack) => haystack.source.startsWith(source)).map((haystack) => haystack.text).join('\n');
      // The scan sees what it should: the key's id and its refusal, its use and the idempotency record.
      expect(text('postgres')).toContain(keyId);
      expect(text('postgres')).toMatch(/\d{4}-\d\d-\d\d/);
      expect(text('jetstream')).toContain('api_key.refuse');
      expect(text('jetstream')).toContain(keyId);
      expect(text('redis')).toContain(t.redisKeyPrefix);
      expect(text('logs')).toContain('AUTH_API_KEY_REVOKED');
      expect(text('logs')).toContain(keyId);
    }, 15_000);
    const pepper = Object.values((await readPepperFile(t.apiKeyPepperFile)).versions);
    // The PKCS#8 header every Ed25519 key shares (its first 16 base64 characters) is no secret; the key material after it is.
    const privateKey = (await readFile(t.internalKeyFiles.privateKeyFile, 'utf8'))
      .split('\n')
      .filter((line) => line.length > 0 && !line.startsWith('-----'))
      .map((line) => line.slice(16));

    // Billing's Stripe key and webhook secret (the platform's fake Stripe's) never leave their files either.
    for (const secret of [parseApiKey(first)!.secret, parseApiKey(second)!.secret, ...pepper, ...privateKey, t.stripe.apiKey, t.stripe.webhookSecret]) {
      expect(secretPieces(haystacks, secret)).toEqual([]);
    }
    // The scanner itself finds a piece when there is one.
    expect(secretPieces([{ source: 'probe', text: `x${first.slice(30, 46)}y` }], parseApiKey(first)!.secret)).toHaveLength(1);
  }, 120_000);
});
