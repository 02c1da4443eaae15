import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { Access, Catalog, DenyAuditor, OutboxDenySink, type PolicySnapshot, type PrincipalEntry } from '@aifactory/authz';
import { createLogger } from '@aifactory/logging';
import { PepperRing, type Principal } from '@aifactory/service-auth';
import { createTestDatabase, tempKeyDir, uniqueEventSubjectPrefix, type TempKeys, type TestDatabase } from '@aifactory/testing';
import { openIamDatabase, type IamDatabase } from '../src/data/database.js';
import type { Caller } from '../src/domain/caller.js';
import { createIamServices, type IamServices } from '../src/services.js';

export const quietLogger = (service = 'iam-test') => createLogger({ service, level: 'silent' });

/**
 * iam's domain services on a private database, with callers built the way
 * the subgraph kit builds a request's context: a real `Access` over the
 * catalogue iam publishes, denies audited into iam's outbox, and a policy
 * read model whose snapshots and age each test controls.
 */
export interface IamFixture {
  db: TestDatabase;
  database: IamDatabase;
  services: IamServices;
  admin: pg.Client;
  catalog: Catalog;
  subjectPrefix: string;
  /** The API-key pepper file the services hash with (version 1). */
  pepperFile: string;
  pepper: PepperRing;
  /** The read model's age every caller sees (ms); a test moves it to make policy stale. */
  policyAgeMs: number;
  /** Rebuilds the callers' catalogue from iam's registries (after a registry change). */
  refreshCatalog(): Promise<void>;
  /** Publishes the organization's current policy snapshot (and the global one) to the callers' read model. */
  publishPolicy(organizationId: string | null): Promise<void>;
  /** A human signed in through the domain, as the gateway's call would. */
  signIn(email: string, options?: { verified?: boolean; subject?: string }): Promise<PrincipalEntry>;
  /** A caller holding exactly the entry's platform roles and grants, as the gateway would mint them. */
  callerOf(entry: PrincipalEntry): Caller;
  callerFor(principal: Principal): Caller;
  platformAdmin(): Caller;
  /** Every outbox row written under one correlation id, oldest first. */
  eventsOf(correlationId: string): Promise<Array<{ type: string; payload: Record<string, unknown>; aggregate_version: number; organization_id: string | null }>>;
  close(): Promise<void>;
}

export const ISSUER = 'https://idp.test.localhost';

export async function startIamFixture(): Promise<IamFixture> {
  const db = await createTestDatabase({ subgraphs: ['iam'] });
  const subjectPrefix = uniqueEventSubjectPrefix();
  const database = openIamDatabase({ DATABASE_URL: db.appUrl('iam'), DB_POOL_SIZE: 6, LOG_LEVEL: 'silent', EVENT_SUBJECT_PREFIX: subjectPrefix });
  const keys: TempKeys = await tempKeyDir();
  const pepperFile = await keys.pepper('api-keys');
  const pepper = await PepperRing.load(pepperFile);
  const services = createIamServices(database, { EVENT_SUBJECT_PREFIX: subjectPrefix, DEFAULT_BILLING_CURRENCY: 'USD' }, pepper);
  const catalog = new Catalog(await services.registries.catalogSnapshot());
  const admin = await db.admin();
  const policies = new Map<string | null, PolicySnapshot>();
  const denies = new DenyAuditor({ publisher: 'iam', sink: new OutboxDenySink(database.pool, database.schema, subjectPrefix), logger: quietLogger() });

  const fixture: IamFixture = {
    db,
    database,
    services,
    admin,
    catalog,
    subjectPrefix,
    pepperFile,
    pepper,
    policyAgeMs: 1_000,
    refreshCatalog: async () => {
      fixture.catalog = new Catalog(await services.registries.catalogSnapshot());
    },
    publishPolicy: async (organizationId) => {
      policies.set(null, await services.policy.policySnapshot(null));
      if (organizationId !== null) policies.set(organizationId, await services.policy.policySnapshot(organizationId));
    },
    signIn: (email, options = {}) =>
      services.users.signIn(
        { actor: { type: 'service', id: 'gateway' }, correlationId: `sign-in-${randomUUID()}` },
        { issuer: ISSUER, subject: options.subject ?? `sub|${email}`, email, emailVerified: options.verified ?? true, name: email.split('@')[0] },
      ),
    callerOf: (entry) =>
      fixture.callerFor({
        type: 'user',
        subject: entry.userId,
        platformRoles: entry.platformRoles,
        grants: entry.grants.map((grant) => ({ level: grant.level, id: grant.id, role: grant.role, org: grant.organizationId, dept: grant.departmentId })),
      }),
    callerFor: (principal) => {
      const correlationId = `test-${randomUUID()}`;
      return {
        principal,
        correlationId,
        access: new Access({ principal, catalog: fixture.catalog, correlationId, denies }),
        accessModel: { policy: (organizationId) => policies.get(organizationId), ageMs: () => fixture.policyAgeMs },
      };
    },
    platformAdmin: () => fixture.callerFor({ type: 'user', subject: 'platform-admin', platformRoles: ['platform_admin'], grants: [] }),
    eventsOf: async (correlationId) => {
      await denies.flush();
      const { rows } = await admin.query(
        'SELECT type, payload, aggregate_version, organization_id FROM iam.outbox_events WHERE correlation_id = $1 ORDER BY occurred_at, type',
        [correlationId],
      );
      return rows;
    },
    close: async () => {
      await denies.flush();
      await database.close();
      await db.drop();
      await keys.cleanup();
    },
  };
  return fixture;
}

/** A fresh entry for the user, after changes made since they signed in (what the gateway's next token would carry). */
export async function reloadEntry(fixture: IamFixture, entry: PrincipalEntry): Promise<PrincipalEntry> {
  return fixture.services.users.signIn(
    { actor: { type: 'service', id: 'gateway' }, correlationId: `reload-${randomUUID()}` },
    { issuer: entry.issuer, subject: entry.subject, email: entry.email ?? undefined, emailVerified: entry.emailVerified, name: entry.name ?? undefined },
  );
}

export function uniqueSlug(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** An organization with a department and a project, founded by a user holding platform_admin; its policy published. */
export async function foundProject(fixture: IamFixture) {
  let founder = await fixture.signIn(`founder-${randomUUID()}@example.test`);
  const asFounder = fixture.callerFor({ ...fixture.callerOf(founder).principal, platformRoles: ['platform_admin'] });
  const organization = await fixture.services.hierarchy.createOrganization(asFounder, { slug: uniqueSlug('org'), name: 'Org' });
  const department = await fixture.services.hierarchy.createDepartment(asFounder, { organizationId: organization.id, slug: 'dept', name: 'Dept' });
  await fixture.publishPolicy(organization.id);
  const project = await fixture.services.hierarchy.createProject(asFounder, { departmentId: department.id, slug: 'proj', name: 'Proj' });
  founder = await reloadEntry(fixture, founder);
  return { organization, department, project, founder };
}

/** A service account in the project and one key of it, made by the project's org_admin. */
export async function keyOf(fixture: IamFixture, project: { project: { id: string }; founder: PrincipalEntry }, scopes = ['gpuaas:node:read']) {
  const owner = fixture.callerOf(project.founder);
  const account = await fixture.services.serviceAccounts.createServiceAccount(owner, { projectId: project.project.id, name: uniqueSlug('sa') });
  const issued = await fixture.services.apiKeys.createApiKey(owner, { serviceAccountId: account.id, scopes });
  return { account, ...issued, owner };
}
