import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { appDatabaseUrl, type DatabaseLayout } from '@aifactory/db-tools';
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
 * Seeds the demo organization, department and project, then its accounts.
 * Each step runs the owning subgraph's own domain code under its own database
 * role, never SQL across schemas; every step is idempotent.
 */
export async function runDevSeed(layout: DatabaseLayout, options: SeedOptions = {}): Promise<SeedResult> {
  const hierarchy = (await runSeedStep('iam', layout, options)) as Omit<SeedResult, 'accountIds'>;
  const billing = (await runSeedStep('billing', layout, options, [
    '--organization',
    hierarchy.organizationId,
    '--currency',
    hierarchy.billingCurrency,
  ])) as { accountIds: string[] };
  return { ...hierarchy, accountIds: billing.accountIds };
}
