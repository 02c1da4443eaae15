import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { loadRegistryData } from '@aifactory/contracts';
import { appDatabaseUrl, type DatabaseLayout } from '@aifactory/db-tools';
import { serviceCredentialPublicKeys } from './dev-keys.js';
import { REPO_ROOT } from './paths.js';

const run = promisify(execFile);

export interface SeedResult {
  organizationId: string;
  departmentId: string;
  projectId: string;
  billingCurrency: string;
  /** The demo organization's org_admin. */
  adminUserId: string;
  accountIds: string[];
}

export interface SeedOptions {
  /** The platform's EVENT_SUBJECT_PREFIX: the events a seed writes must reach the same streams as the services'. */
  eventSubjectPrefix?: string;
  /**
   * Who the demo organization's org_admin is: the identity `npm run dev:token -- --email <email>`
   * asserts (the dev IdP's issuer, subject `dev|<email>`). Left out, the iam seed's defaults,
   * which are the dev stack's defaults (DEV_IDP_ISSUER, DEV_ADMIN_EMAIL).
   */
  admin?: { issuer: string; email: string };
  /**
   * The services' own credentials (`ensureDevKeys().serviceCredentialFiles`):
   * the public key of each one that is a registered service identity
   * (service-identities.json) is registered with iam, so its tokens verify.
   */
  serviceCredentialFiles?: Record<string, string>;
}

async function runSeedStep(subgraph: string, layout: DatabaseLayout, options: SeedOptions, args: string[] = []): Promise<unknown> {
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: appDatabaseUrl(layout, subgraph), DB_POOL_SIZE: '1', LOG_LEVEL: 'warn' };
  if (options.eventSubjectPrefix !== undefined) env.EVENT_SUBJECT_PREFIX = options.eventSubjectPrefix;
  if (options.admin !== undefined) {
    env.DEMO_ADMIN_ISSUER = options.admin.issuer;
    env.DEMO_ADMIN_EMAIL = options.admin.email;
  }
  const { stdout } = await run(process.execPath, [path.join(REPO_ROOT, 'subgraphs', subgraph, 'dist', 'seed', 'cli.js'), ...args], { env });
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}');
}

/**
 * Registers the public half of each service credential whose service is a
 * registered identity, through iam's own domain code
 * (`ServiceIdentityService.registerKey`, via iam's service-identities CLI);
 * registering a key the identity already holds changes nothing.
 */
async function registerServiceKeys(layout: DatabaseLayout, options: SeedOptions, files: Record<string, string>): Promise<void> {
  const identities = new Set(loadRegistryData().serviceIdentities.map((identity) => identity.name));
  const keys = (await serviceCredentialPublicKeys(files)).filter((key) => identities.has(key.service));
  if (keys.length === 0) return;
  const dir = await mkdtemp(path.join(tmpdir(), 'aif-service-keys-'));
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: appDatabaseUrl(layout, 'iam'), DB_POOL_SIZE: '1', LOG_LEVEL: 'warn' };
    if (options.eventSubjectPrefix !== undefined) env.EVENT_SUBJECT_PREFIX = options.eventSubjectPrefix;
    for (const key of keys) {
      const file = path.join(dir, `${key.service}.pub.pem`);
      await writeFile(file, key.publicKeyPem);
      await run(process.execPath, [path.join(REPO_ROOT, 'subgraphs', 'iam', 'dist', 'cli', 'service-identities.js'), 'register', key.service, file], { env });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Seeds the demo organization, department and project, then its accounts.
 * Each step runs the owning subgraph's own domain code under its own database
 * role, never SQL across schemas; every step is idempotent.
 */
export async function runDevSeed(layout: DatabaseLayout, options: SeedOptions = {}): Promise<SeedResult> {
  const hierarchy = (await runSeedStep('iam', layout, options)) as Omit<SeedResult, 'accountIds'>;
  if (options.serviceCredentialFiles !== undefined) await registerServiceKeys(layout, options, options.serviceCredentialFiles);
  const billing = (await runSeedStep('billing', layout, options, [
    '--organization',
    hierarchy.organizationId,
    '--currency',
    hierarchy.billingCurrency,
  ])) as { accountIds: string[] };
  return { ...hierarchy, accountIds: billing.accountIds };
}
