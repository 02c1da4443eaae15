import { randomUUID } from 'node:crypto';
import { Access, Catalog, DenyAuditor, type DeniedAccess, type DenySink } from '@aifactory/authz';
import { AppError } from '@aifactory/errors';
import { createLogger } from '@aifactory/logging';
import type { Principal } from '@aifactory/service-auth';
import { databaseConfigSchema, Outbox } from '@aifactory/subgraph-kit';
import { createTestDatabase, type TestDatabase } from '@aifactory/testing';
import type pg from 'pg';
import { openIamDatabase, type IamDatabase } from '../src/data/database.js';
import { PolicyService } from '../src/domain/policy.js';
import { RegistryService, type AuthorizedCaller } from '../src/domain/registries.js';

export const platformAdmin: Principal = { type: 'user', subject: 'platform-admin', platformRoles: ['platform_admin'], grants: [] };
export const internalDeveloper: Principal = { type: 'user', subject: 'internal-dev', platformRoles: ['internal_developer'], grants: [] };

export interface OutboxRow {
  type: string;
  aggregate_type: string;
  aggregate_id: string;
  aggregate_version: number;
  organization_id: string | null;
  payload: Record<string, unknown>;
}

/** iam's services over a private, migrated database, with callers authorized by the catalogue it holds. */
export interface RegistriesHarness {
  db: TestDatabase;
  admin: pg.Client;
  registries: RegistryService;
  policy: PolicyService;
  /** Audited denies, as the deny sink received them. */
  denies: DeniedAccess[];
  /** A caller judged by the catalogue as it is now in the database; each call gets its own correlation id. */
  caller(principal: Principal, onDeprecated?: (scope: string) => void): Promise<AuthorizedCaller & { access: Access }>;
  /** The outbox events written under one correlation id, in the order written. */
  events(correlationId: string): Promise<OutboxRow[]>;
  version(registry: string): Promise<number>;
  /** An organization with one department holding two projects. */
  organization(): Promise<{ organizationId: string; departmentId: string; projectIds: [string, string] }>;
  close(): Promise<void>;
}

export async function startRegistriesHarness(): Promise<RegistriesHarness> {
  const db = await createTestDatabase({ subgraphs: ['iam'] });
  const database: IamDatabase = openIamDatabase(
    databaseConfigSchema.parse({ DATABASE_URL: db.appUrl('iam'), DB_POOL_SIZE: '12', LOG_LEVEL: 'silent' }),
  );
  const outbox = new Outbox({ schema: database.schema });
  const registries = new RegistryService(database.prisma, outbox);
  const policy = new PolicyService(database.prisma, outbox);
  const admin = await db.admin();
  const denies: DeniedAccess[] = [];
  const sink: DenySink = {
    write: async (denied) => {
      denies.push(denied);
    },
  };
  const auditor = new DenyAuditor({ publisher: 'iam', sink, logger: createLogger({ service: 'iam-test', level: 'silent' }) });
  let slug = 0;
  return {
    db,
    admin,
    registries,
    policy,
    denies,
    caller: async (principal, onDeprecated) => {
      const correlationId = `test-${randomUUID()}`;
      const catalog = new Catalog(await registries.catalogSnapshot());
      return { principal, correlationId, access: new Access({ principal, catalog, correlationId, denies: auditor, ...(onDeprecated ? { onDeprecated } : {}) }) };
    },
    events: async (correlationId) => {
      const { rows } = await admin.query<OutboxRow>(
        `SELECT type, aggregate_type, aggregate_id, aggregate_version, organization_id, payload
           FROM iam.outbox_events WHERE correlation_id = $1 ORDER BY created_at, type`,
        [correlationId],
      );
      return rows;
    },
    version: async (registry) => {
      const { rows } = await admin.query<{ version: number }>('SELECT version FROM iam.registry_versions WHERE name = $1', [registry]);
      return rows[0]?.version ?? -1;
    },
    organization: async () => {
      slug += 1;
      const suffix = `${slug}-${randomUUID().slice(0, 8)}`;
      const org = await admin.query<{ id: string }>(
        `INSERT INTO iam.organizations (slug, name, billing_currency) VALUES ($1, $2, 'USD') RETURNING id`,
        [`org-${suffix}`, `Org ${suffix}`],
      );
      const organizationId = org.rows[0]!.id;
      const dept = await admin.query<{ id: string }>(
        `INSERT INTO iam.departments (organization_id, slug, name) VALUES ($1, 'research', 'Research') RETURNING id`,
        [organizationId],
      );
      const departmentId = dept.rows[0]!.id;
      const projects = await admin.query<{ id: string }>(
        `INSERT INTO iam.projects (organization_id, department_id, slug, name)
         VALUES ($1, $2, 'alpha', 'Alpha'), ($1, $2, 'beta', 'Beta') RETURNING id`,
        [organizationId, departmentId],
      );
      return { organizationId, departmentId, projectIds: [projects.rows[0]!.id, projects.rows[1]!.id] };
    },
    close: async () => {
      await auditor.flush();
      await database.close();
      await db.drop();
    },
  };
}

/** The AppError code a promise rejects with, and its details; fails the test when it resolves. */
export async function refusal(promise: Promise<unknown>): Promise<{ code: string; details: Record<string, unknown> | undefined }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof AppError) return { code: error.code, details: error.details as Record<string, unknown> | undefined };
    throw error;
  }
  throw new Error('expected a refusal, but the call succeeded');
}
