import { randomUUID } from 'node:crypto';
import type { PrincipalEntry } from '@aifactory/authz';
import { reloadEntry, startIamFixture, uniqueSlug, type IamFixture } from './iam-fixture.js';

let fx: IamFixture;

beforeAll(async () => {
  fx = await startIamFixture();
}, 120_000);

afterAll(async () => {
  await fx?.close();
});

/** An organization with a department and a project, founded by a user holding platform_admin through the gateway's group mapping. */
async function foundOrganization() {
  let founder = await fx.signIn(`founder-${randomUUID()}@example.test`);
  const asFounder = fx.callerFor({ ...fx.callerOf(founder).principal, platformRoles: ['platform_admin'] });
  const organization = await fx.services.hierarchy.createOrganization(asFounder, { slug: uniqueSlug('org'), name: 'Org' });
  const department = await fx.services.hierarchy.createDepartment(asFounder, { organizationId: organization.id, slug: 'dept', name: 'Dept' });
  await fx.publishPolicy(organization.id);
  const project = await fx.services.hierarchy.createProject(asFounder, { departmentId: department.id, slug: 'proj', name: 'Proj' });
  founder = await reloadEntry(fx, founder);
  return { organization, department, project, founder };
}

async function member(entry: PrincipalEntry): Promise<PrincipalEntry> {
  return reloadEntry(fx, entry);
}

describe('the organization founder', () => {
  it('becomes its org_admin in the same transaction, announced and audited', async () => {
    const founder = await fx.signIn(`founder-${randomUUID()}@example.test`);
    const caller = fx.callerFor({ ...fx.callerOf(founder).principal, platformRoles: ['platform_admin'] });

    const organization = await fx.services.hierarchy.createOrganization(caller, { slug: uniqueSlug('org'), name: 'Acme' });

    const entry = await member(founder);
    expect(entry.grants).toEqual([{ level: 'organization', id: organization.id, role: 'org_admin', organizationId: organization.id, departmentId: null }]);
    expect(organization.billingCurrency).toBe('USD');
    const types = (await fx.eventsOf(caller.correlationId)).map((event) => event.type);
    expect(types).toEqual(
      expect.arrayContaining([
        'platform.iam.organization.created',
        'platform.audit.iam.organization.create',
        'platform.iam.membership.changed',
        'platform.audit.iam.membership.grant',
        'platform.iam.user.changed',
      ]),
    );
  });

  it('is refused for a user without platform_admin while self-service is off', async () => {
    const someone = await fx.signIn(`someone-${randomUUID()}@example.test`);
    await fx.publishPolicy(null);

    await expect(fx.services.hierarchy.createOrganization(fx.callerOf(someone), { slug: uniqueSlug('org'), name: 'Mine' })).rejects.toMatchObject({
      code: 'IAM_SELF_SERVICE_DISABLED',
    });
  });
});

describe('the last org_admin', () => {
  it('cannot be removed', async () => {
    const { organization, founder } = await foundOrganization();
    const [membership] = (await fx.services.memberships.membersOf(fx.platformAdmin(), { organizationId: organization.id, level: 'organization', nodeId: organization.id, departmentId: null, projectId: null }, { first: 10, after: null })).edges;

    await expect(fx.services.memberships.removeMembership(fx.callerOf(founder), membership!.node.id)).rejects.toMatchObject({ code: 'IAM_LAST_ORG_ADMIN' });
    await expect(fx.services.memberships.removeMembership(fx.platformAdmin(), membership!.node.id)).rejects.toMatchObject({ code: 'IAM_LAST_ORG_ADMIN' });
  });

  it('cannot be demoted', async () => {
    const { organization, founder } = await foundOrganization();

    await expect(
      fx.services.memberships.grantRole(fx.callerOf(founder), { userId: founder.userId, level: 'organization', nodeId: organization.id, role: 'viewer' }),
    ).rejects.toMatchObject({ code: 'IAM_LAST_ORG_ADMIN' });
  });

  it('survives two concurrent removals of the only two admins: exactly one succeeds', async () => {
    const { organization, founder } = await foundOrganization();
    const second = await fx.signIn(`second-${randomUUID()}@example.test`);
    const granted = await fx.services.memberships.grantRole(fx.callerOf(founder), { userId: second.userId, level: 'organization', nodeId: organization.id, role: 'org_admin' });
    const founderMembership = (await fx.services.accessStore.membershipsOfUser(founder.userId)).find((m) => m.organizationId === organization.id)!;

    const outcomes = await Promise.allSettled([
      fx.services.memberships.removeMembership(fx.platformAdmin(), founderMembership.id),
      fx.services.memberships.removeMembership(fx.platformAdmin(), granted.id),
    ]);

    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
    const refused = outcomes.find((outcome) => outcome.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ code: 'IAM_LAST_ORG_ADMIN' });
    const { rows } = await fx.admin.query(`SELECT count(*)::int AS n FROM iam.memberships WHERE organization_id = $1 AND role = 'org_admin'`, [organization.id]);
    expect(rows[0].n).toBe(1);
  });
});

describe('granting roles', () => {
  it('refuses a project_admin granting department_admin (escalation) and a role at the wrong level', async () => {
    const { organization, department, project, founder } = await foundOrganization();
    const lead = await fx.signIn(`lead-${randomUUID()}@example.test`);
    const other = await fx.signIn(`other-${randomUUID()}@example.test`);
    await fx.services.memberships.grantRole(fx.callerOf(founder), { userId: lead.userId, level: 'project', nodeId: project.id, role: 'project_admin' });
    const asLead = fx.callerOf(await member(lead));

    await expect(
      fx.services.memberships.grantRole(asLead, { userId: other.userId, level: 'department', nodeId: department.id, role: 'department_admin' }),
    ).rejects.toMatchObject({ code: 'AUTH_ROLE_ESCALATION' });
    await expect(fx.services.memberships.grantRole(asLead, { userId: other.userId, level: 'project', nodeId: project.id, role: 'org_admin' })).rejects.toMatchObject({
      code: 'IAM_INVALID_ROLE_LEVEL',
    });
    const member1 = await fx.services.memberships.grantRole(asLead, { userId: other.userId, level: 'project', nodeId: project.id, role: 'project_member' });
    expect(member1.role).toBe('project_member');
    await expect(fx.services.memberships.grantRole(asLead, { userId: other.userId, level: 'project', nodeId: project.id, role: 'project_member' })).rejects.toMatchObject({
      code: 'IAM_DUPLICATE',
    });
    // A project member manages nobody, even on their own project.
    const asProjectMember = fx.callerFor({
      type: 'user',
      subject: randomUUID(),
      platformRoles: [],
      grants: [{ level: 'project', id: project.id, role: 'project_member', org: organization.id, dept: department.id }],
    });
    await expect(fx.services.memberships.grantRole(asProjectMember, { userId: other.userId, level: 'project', nodeId: project.id, role: 'project_admin' })).rejects.toMatchObject({
      code: 'AUTH_FORBIDDEN',
    });
  });

  it('changes an existing role in place and bumps the holder access version', async () => {
    const { project, founder } = await foundOrganization();
    const dev = await fx.signIn(`dev-${randomUUID()}@example.test`);
    const first = await fx.services.memberships.grantRole(fx.callerOf(founder), { userId: dev.userId, level: 'project', nodeId: project.id, role: 'viewer' });
    const before = await member(dev);

    const changed = await fx.services.memberships.grantRole(fx.callerOf(founder), { userId: dev.userId, level: 'project', nodeId: project.id, role: 'project_admin' });

    expect(changed.id).toBe(first.id);
    expect(changed.version).toBe(2);
    const after = await member(dev);
    expect(after.version).toBeGreaterThan(before.version);
    expect(after.grants.map((grant) => grant.role)).toEqual(['project_admin']);
  });
});

describe('another organization', () => {
  it('is invisible to reads and refuses writes, and the denies are audited', async () => {
    const mine = await foundOrganization();
    const theirs = await foundOrganization();
    const asMe = fx.callerOf(mine.founder);

    expect(await fx.services.hierarchy.organization(asMe, theirs.organization.id)).toBeNull();
    expect(await fx.services.hierarchy.project(asMe, theirs.project.id)).toBeNull();
    const members = await fx.services.memberships.membersOf(
      asMe,
      { organizationId: theirs.organization.id, level: 'organization', nodeId: theirs.organization.id, departmentId: null, projectId: null },
      { first: 10, after: null },
    );
    expect(members.edges).toEqual([]);
    const visible = await fx.services.hierarchy.organizations(asMe, { first: 100, after: null });
    expect(visible.edges.map((edge) => edge.node.id)).toEqual([mine.organization.id]);

    await expect(fx.services.hierarchy.createDepartment(asMe, { organizationId: theirs.organization.id, slug: 'x', name: 'X' })).rejects.toMatchObject({ code: 'AUTH_FORBIDDEN' });
    await expect(fx.services.hierarchy.renameProject(asMe, { id: theirs.project.id, name: 'Mine now' })).rejects.toMatchObject({ code: 'AUTH_FORBIDDEN' });
    await expect(
      fx.services.memberships.inviteMember(asMe, { email: 'x@example.test', level: 'organization', nodeId: theirs.organization.id, role: 'viewer' }),
    ).rejects.toMatchObject({ code: 'AUTH_FORBIDDEN' });
    await expect(
      fx.services.memberships.grantRole(asMe, { userId: mine.founder.userId, level: 'organization', nodeId: theirs.organization.id, role: 'org_admin' }),
    ).rejects.toMatchObject({ code: 'AUTH_FORBIDDEN' });

    const denies = await fx.eventsOf(asMe.correlationId);
    expect(denies.length).toBeGreaterThan(0);
    for (const deny of denies) {
      expect(deny.type).toBe('platform.audit.iam.access.deny');
      expect(deny.organization_id).toBe(theirs.organization.id);
      expect(deny.payload).toMatchObject({ outcome: 'denied', principal: { type: 'user', id: mine.founder.userId }, correlationId: asMe.correlationId });
    }
  });
});
