import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configVariablesOf, expand, loadSecretPurposes, looksSecret, parseSecretPurposes, SECRET_PURPOSES_FILE, unregisteredSecretVariables } from './purposes.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Every config schema of a service or tool: the gateway, the subgraph kit, each subgraph, and the rest. */
function configFiles(): string[] {
  const subgraphs = readdirSync(path.join(REPO_ROOT, 'subgraphs'))
    .map((name) => path.join(REPO_ROOT, 'subgraphs', name, 'src', 'config.ts'))
    .filter((file) => existsSync(file));
  return [
    path.join(REPO_ROOT, 'gateway', 'src', 'config.ts'),
    path.join(REPO_ROOT, 'packages', 'subgraph-kit', 'src', 'config.ts'),
    ...subgraphs,
    path.join(REPO_ROOT, 'node-agent', 'src', 'config.ts'),
    path.join(REPO_ROOT, 'prisma', 'src', 'config.ts'),
    path.join(REPO_ROOT, 'tools', 'devstack', 'src', 'dev-config.ts'),
  ].filter((file) => existsSync(file));
}

describe('the secret-purpose registry', () => {
  const registry = loadSecretPurposes();
  const purposes = expand(registry);

  it('lists every secret a service config holds or names', () => {
    const files = configFiles();
    expect(files.length).toBeGreaterThanOrEqual(8);
    const variables = files.flatMap((file) => configVariablesOf(readFileSync(file, 'utf8')));
    // The scan sees what it must: otherwise an empty scan would pass.
    expect(variables).toEqual(expect.arrayContaining(['INTERNAL_JWT_PRIVATE_KEY_FILE', 'INTERNAL_JWT_PUBLIC_KEY_FILES', 'SERVICE_CREDENTIAL_FILE', 'NATS_PASSWORD']));
    expect(unregisteredSecretVariables(registry, variables)).toEqual([]);
  });

  it('catches a secret the registry does not know', () => {
    const source = `export const schema = z.object({\n  PORT: env.port(),\n  STRIPE_WEBHOOK_SIGNING_SECRET: env.nonEmpty(),\n  PAYMENT_API_KEY: env.nonEmpty(),\n  CA_BUNDLE_FILE: env.nonEmpty(),\n});`;
    expect(unregisteredSecretVariables(registry, configVariablesOf(source))).toEqual(['CA_BUNDLE_FILE', 'PAYMENT_API_KEY', 'STRIPE_WEBHOOK_SIGNING_SECRET']);
    for (const name of ['X_FILE', 'X_FILES', 'NATS_PASSWORD', 'A_SECRET_B', 'STRIPE_API_KEY', 'BOT_TOKEN']) expect(looksSecret(name)).toBe(true);
    for (const name of ['PORT', 'SERVICE_TOKEN_TTL_SECONDS', 'DATABASE_SCHEMA', 'KEY_COUNT']) expect(looksSecret(name)).toBe(false);
  });

  it('names the purposes the issue lists, with owner, consumers and a rotation rule', () => {
    const names = purposes.map((purpose) => purpose.purpose);
    expect(names).toEqual(
      expect.arrayContaining([
        'api-key-pepper',
        'internal-jwt-signing',
        'pomerium-jwks',
        'nats-passwords',
        'database-app-passwords',
        'task-signing-key',
        'stripe-api-key',
        'stripe-webhook-secret',
      ]),
    );
    expect(purposes.find((purpose) => purpose.purpose === 'task-signing-key')?.status).toBe('planned');
    for (const active of ['stripe-api-key', 'stripe-webhook-secret']) {
      expect(purposes.find((purpose) => purpose.purpose === active)?.status).toBe('active');
    }
    for (const purpose of purposes) {
      expect(purpose.owner.length).toBeGreaterThan(0);
      expect(purpose.consumers.length).toBeGreaterThan(0);
      expect(purpose.rotation.cadence.length).toBeGreaterThan(0);
    }
    // The two the rotate command handles say so.
    expect(purposes.filter((purpose) => purpose.rotation.method.startsWith('npm run secrets:rotate')).map((purpose) => purpose.purpose).sort()).toEqual([
      'api-key-pepper',
      'internal-jwt-signing',
    ]);
  });

  it('has a service credential for every subgraph', () => {
    const subgraphs = readdirSync(path.join(REPO_ROOT, 'subgraphs')).filter((name) => existsSync(path.join(REPO_ROOT, 'subgraphs', name, 'package.json')));
    for (const subgraph of subgraphs) expect(purposes.map((purpose) => purpose.purpose)).toContain(`service-credential:${subgraph}`);
  });

  it('keeps secrets in files or the environment only: never a database row, a read model or a URL', () => {
    for (const purpose of purposes.filter((entry) => entry.secret)) expect(['file', 'env']).toContain(purpose.location.kind);
    const text = readFileSync(SECRET_PURPOSES_FILE, 'utf8');
    const withDatabase = JSON.parse(text) as { purposes: Array<{ location: { kind: string } }> };
    withDatabase.purposes[0]!.location.kind = 'database';
    expect(() => parseSecretPurposes(JSON.stringify(withDatabase))).toThrow(/location.kind/);
    const fetched = JSON.parse(text) as { purposes: Array<{ location: { kind: string } }> };
    fetched.purposes[0]!.location.kind = 'url';
    expect(() => parseSecretPurposes(JSON.stringify(fetched))).toThrow(/never fetched/);
  });

  it('refuses a purpose listed twice or an undeclared tier', () => {
    const registryJson = JSON.parse(readFileSync(SECRET_PURPOSES_FILE, 'utf8')) as { purposes: Array<Record<string, unknown>> };
    registryJson.purposes.push({ ...registryJson.purposes[0]! });
    expect(() => parseSecretPurposes(JSON.stringify(registryJson))).toThrow(/listed twice/);
    registryJson.purposes.pop();
    registryJson.purposes[0]!.custodyTier = 'shoebox';
    expect(() => parseSecretPurposes(JSON.stringify(registryJson))).toThrow(/custody tier/);
  });
});
