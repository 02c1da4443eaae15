import type { PrincipalEntry } from '@aifactory/authz';
import { platformRolesFromGroups, principalFromEntry } from './principal.js';

const ORG = '11111111-1111-4111-8111-111111111111';
const DEPT = 'aaaaaaaa-0000-4000-8000-00000000000a';
const PROJECT = 'aaaaaaaa-1111-4111-8111-00000000000a';

const entry: PrincipalEntry = {
  userId: '9d0f7c1e-5b7a-4f7e-9a51-2f3c4d5e6f70',
  issuer: 'https://idp.test',
  subject: 'idp-subject-1',
  email: 'ada@example.com',
  emailVerified: true,
  name: 'Ada',
  platformRoles: ['internal_developer'],
  grants: [
    { level: 'organization', id: ORG, role: 'viewer', organizationId: ORG, departmentId: null },
    { level: 'project', id: PROJECT, role: 'project_member', organizationId: ORG, departmentId: DEPT },
  ],
  version: 4,
  updatedAt: '2026-01-01T00:00:00.000Z',
};

describe('platformRolesFromGroups', () => {
  const roleGroups = { platform_admin: ['ops-admins'], internal_developer: ['developers', 'sre'] };

  it('maps groups to platform roles through the configured mapping', () => {
    expect(platformRolesFromGroups(['sre', 'ops-admins'], roleGroups).sort()).toEqual(['internal_developer', 'platform_admin']);
  });

  it('gives no platform role to a user in no mapped group', () => {
    expect(platformRolesFromGroups(['everyone'], roleGroups)).toEqual([]);
  });
});

describe('principalFromEntry', () => {
  it("sends IAM's user id as subject and every grant with its organization and department", () => {
    expect(principalFromEntry(entry, [], 12)).toEqual({
      type: 'user',
      subject: entry.userId,
      email: 'ada@example.com',
      name: 'Ada',
      platformRoles: ['internal_developer'],
      grants: [
        { level: 'organization', id: ORG, role: 'viewer', org: ORG, dept: null },
        { level: 'project', id: PROJECT, role: 'project_member', org: ORG, dept: DEPT },
      ],
      registryVersion: 12,
    });
  });

  it("joins the groups mapping's platform roles with IAM's, once each", () => {
    expect(principalFromEntry(entry, ['platform_admin', 'internal_developer'], 12).platformRoles).toEqual(['internal_developer', 'platform_admin']);
  });

  it('leaves out what IAM does not know', () => {
    const principal = principalFromEntry({ ...entry, email: null, name: null, platformRoles: [], grants: [] }, [], undefined);
    expect(principal).toEqual({ type: 'user', subject: entry.userId, platformRoles: [], grants: [] });
  });
});
