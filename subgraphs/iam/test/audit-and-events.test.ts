import { randomUUID } from 'node:crypto';
import { auditRecordSchema, parseResourceId } from '@aifactory/contracts';
import type { Caller } from '../src/domain/caller.js';
import { reloadEntry, startIamFixture, uniqueSlug, type IamFixture } from './iam-fixture.js';

let fx: IamFixture;

beforeAll(async () => {
  fx = await startIamFixture();
}, 120_000);

afterAll(async () => {
  await fx?.close();
});

/** The domain events and audit records one call wrote, checked against the audit contract. */
async function written(caller: Caller) {
  const events = await fx.eventsOf(caller.correlationId);
  const audits = events.filter((event) => event.type.startsWith('platform.audit.iam.'));
  for (const audit of audits) {
    const record = auditRecordSchema.parse(audit.payload);
    expect(record).toMatchObject({ outcome: 'succeeded', correlationId: caller.correlationId, principal: { id: caller.principal.subject } });
    if (record.resource !== null) expect(parseResourceId(record.resource).region).toBe('global');
  }
  return { domain: events.filter((event) => event.type.startsWith('platform.iam.')).map((event) => event.type), audit: audits.map((event) => event.type) };
}

describe('every IAM mutation', () => {
  it('writes its domain event and its audit event in the same transaction', async () => {
    let founder = await fx.signIn(`founder-${randomUUID()}@example.test`);
    const platform = () => fx.callerFor({ ...fx.callerOf(founder).principal, platformRoles: ['platform_admin'] });
    const { hierarchy, memberships, users } = fx.services;

    let caller = platform();
    const organization = await hierarchy.createOrganization(caller, { slug: uniqueSlug('org'), name: 'Org', billingCurrency: 'EUR' });
    expect(organization.billingCurrency).toBe('EUR');
    expect(await written(caller)).toEqual({
      domain: expect.arrayContaining(['platform.iam.organization.created', 'platform.iam.membership.changed', 'platform.iam.user.changed']),
      audit: expect.arrayContaining(['platform.audit.iam.organization.create', 'platform.audit.iam.membership.grant']),
    });
    founder = await reloadEntry(fx, founder);
    const admin = () => fx.callerOf(founder);

    caller = admin();
    await hierarchy.renameOrganization(caller, { id: organization.id, name: 'Renamed' });
    expect(await written(caller)).toEqual({ domain: ['platform.iam.organization.updated'], audit: ['platform.audit.iam.organization.update'] });

    caller = admin();
    const department = await hierarchy.createDepartment(caller, { organizationId: organization.id, slug: 'dept', name: 'Dept' });
    expect(await written(caller)).toEqual({ domain: ['platform.iam.department.created'], audit: ['platform.audit.iam.department.create'] });

    caller = admin();
    await hierarchy.renameDepartment(caller, { id: department.id, name: 'Dept 2' });
    expect(await written(caller)).toEqual({ domain: ['platform.iam.department.updated'], audit: ['platform.audit.iam.department.update'] });

    await fx.publishPolicy(organization.id);
    caller = admin();
    const project = await hierarchy.createProject(caller, { departmentId: department.id, slug: 'proj', name: 'Proj' });
    expect(await written(caller)).toEqual({ domain: ['platform.iam.project.created'], audit: ['platform.audit.iam.project.create'] });

    caller = admin();
    await hierarchy.renameProject(caller, { id: project.id, name: 'Proj 2' });
    expect(await written(caller)).toEqual({ domain: ['platform.iam.project.updated'], audit: ['platform.audit.iam.project.update'] });

    const dev = await fx.signIn(`dev-${randomUUID()}@example.test`);
    caller = admin();
    const membership = await memberships.grantRole(caller, { userId: dev.userId, level: 'project', nodeId: project.id, role: 'viewer' });
    expect(await written(caller)).toEqual({
      domain: expect.arrayContaining(['platform.iam.membership.changed', 'platform.iam.user.changed']),
      audit: ['platform.audit.iam.membership.grant'],
    });

    caller = admin();
    await memberships.grantRole(caller, { userId: dev.userId, level: 'project', nodeId: project.id, role: 'project_admin' });
    expect((await written(caller)).audit).toEqual(['platform.audit.iam.membership.change']);

    caller = admin();
    await memberships.removeMembership(caller, membership.id);
    expect(await written(caller)).toEqual({
      domain: expect.arrayContaining(['platform.iam.membership.changed', 'platform.iam.user.changed']),
      audit: ['platform.audit.iam.membership.remove'],
    });

    caller = admin();
    const invitation = await memberships.inviteMember(caller, { email: `inv-${randomUUID()}@example.test`, level: 'department', nodeId: department.id, role: 'viewer' });
    expect(await written(caller)).toEqual({ domain: ['platform.iam.membership.changed'], audit: ['platform.audit.iam.invitation.create'] });

    caller = admin();
    await memberships.revokeInvitation(caller, invitation.id);
    expect(await written(caller)).toEqual({ domain: ['platform.iam.membership.changed'], audit: ['platform.audit.iam.invitation.revoke'] });

    caller = platform();
    await users.grantPlatformRole(caller, { userId: dev.userId, role: 'internal_developer' });
    expect(await written(caller)).toEqual({ domain: ['platform.iam.user.changed'], audit: ['platform.audit.iam.platform_role.grant'] });

    caller = platform();
    await users.revokePlatformRole(caller, { userId: dev.userId, role: 'internal_developer' });
    expect(await written(caller)).toEqual({ domain: ['platform.iam.user.changed'], audit: ['platform.audit.iam.platform_role.revoke'] });

    caller = admin();
    await hierarchy.archiveProject(caller, project.id);
    expect(await written(caller)).toEqual({ domain: ['platform.iam.project.archived'], audit: ['platform.audit.iam.project.archive'] });

    caller = admin();
    await hierarchy.archiveDepartment(caller, department.id);
    expect(await written(caller)).toEqual({ domain: ['platform.iam.department.archived'], audit: ['platform.audit.iam.department.archive'] });

    await expect(hierarchy.createProject(admin(), { departmentId: department.id, slug: 'late', name: 'Late' })).rejects.toMatchObject({ code: 'IAM_ARCHIVED' });
  });

  it('names the resource by its canonical id and the change in its details', async () => {
    const founder = await fx.signIn(`founder-${randomUUID()}@example.test`);
    const caller = fx.callerFor({ ...fx.callerOf(founder).principal, platformRoles: ['platform_admin'] });

    const organization = await fx.services.hierarchy.createOrganization(caller, { slug: uniqueSlug('org'), name: 'Org' });

    const audit = (await fx.eventsOf(caller.correlationId)).find((event) => event.type === 'platform.audit.iam.organization.create')!;
    expect(audit.payload).toMatchObject({
      action: 'iam.organization.create',
      actionVersion: 1,
      privileged: true,
      retentionClass: 'extended',
      scope: 'platform:organization:create',
      resource: `core42:aicloud:global:${organization.id}:-:organization:${organization.id}`,
      details: { slug: organization.slug, billingCurrency: 'USD' },
    });
  });
});

describe('createProject', () => {
  it('refuses with POLICY_SNAPSHOT_STALE when the policy snapshot is over 5 minutes old, and counts the refusal', async () => {
    let founder = await fx.signIn(`founder-${randomUUID()}@example.test`);
    const asPlatform = fx.callerFor({ ...fx.callerOf(founder).principal, platformRoles: ['platform_admin'] });
    const organization = await fx.services.hierarchy.createOrganization(asPlatform, { slug: uniqueSlug('org'), name: 'Org' });
    const department = await fx.services.hierarchy.createDepartment(asPlatform, { organizationId: organization.id, slug: 'dept', name: 'Dept' });
    await fx.publishPolicy(organization.id);
    founder = await reloadEntry(fx, founder);
    const before = fx.services.freshPolicy.refusalCount;

    fx.policyAgeMs = 5 * 60_000 + 1;
    try {
      await expect(fx.services.hierarchy.createProject(fx.callerOf(founder), { departmentId: department.id, slug: 'p', name: 'P' })).rejects.toMatchObject({
        code: 'POLICY_SNAPSHOT_STALE',
      });
    } finally {
      fx.policyAgeMs = 1_000;
    }

    expect(fx.services.freshPolicy.refusalCount).toBe(before + 1);
    const { rowCount } = await fx.admin.query('SELECT 1 FROM iam.projects WHERE department_id = $1', [department.id]);
    expect(rowCount).toBe(0);
    await expect(fx.services.hierarchy.createProject(fx.callerOf(founder), { departmentId: department.id, slug: 'p', name: 'P' })).resolves.toMatchObject({ slug: 'p' });
  });

  it('refuses a project past the department quota from the organization policy', async () => {
    let founder = await fx.signIn(`founder-${randomUUID()}@example.test`);
    const asPlatform = fx.callerFor({ ...fx.callerOf(founder).principal, platformRoles: ['platform_admin'] });
    const organization = await fx.services.hierarchy.createOrganization(asPlatform, { slug: uniqueSlug('org'), name: 'Org' });
    const department = await fx.services.hierarchy.createDepartment(asPlatform, { organizationId: organization.id, slug: 'dept', name: 'Dept' });
    await fx.admin.query(
      `INSERT INTO iam.policy_values (level, target_id, organization_id, key, value) VALUES ('department', $1, $2, 'platform.projects.max_per_department', '"1"')`,
      [department.id, organization.id],
    );
    await fx.publishPolicy(organization.id);
    founder = await reloadEntry(fx, founder);

    await fx.services.hierarchy.createProject(fx.callerOf(founder), { departmentId: department.id, slug: 'one', name: 'One' });
    await expect(fx.services.hierarchy.createProject(fx.callerOf(founder), { departmentId: department.id, slug: 'two', name: 'Two' })).rejects.toMatchObject({
      code: 'POLICY_BOUND_VIOLATION',
    });
  });
});
