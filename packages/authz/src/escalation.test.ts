import type { Principal } from '@aifactory/service-auth';
import { grantAt, RESOURCES, testCatalog, user } from '../test/fixtures.js';
import { canChangeMembership, canGrant, requireGrantAuthority, type GrantTarget } from './escalation.js';
import type { Level } from './model.js';

const catalog = testCatalog();

/**
 * The expectation, written out by hand from plan-iam.md (Escalation) rather
 * than computed by the code under test.
 */
const TARGETS = {
  'O1 (own org)': 'O1',
  'O2 (other org)': 'O2',
  'DA (own dept)': 'DA',
  'DB (sibling dept)': 'DB',
  'DC (other org)': 'DC',
  'PA (own project)': 'PA',
  'PA2 (same dept, other project)': 'PA2',
  'PB (sibling dept)': 'PB',
  'PC (other org)': 'PC',
} as const;
type TargetName = keyof typeof TARGETS;

const LEVEL_OF: Record<TargetName, Level> = {
  'O1 (own org)': 'organization',
  'O2 (other org)': 'organization',
  'DA (own dept)': 'department',
  'DB (sibling dept)': 'department',
  'DC (other org)': 'department',
  'PA (own project)': 'project',
  'PA2 (same dept, other project)': 'project',
  'PB (sibling dept)': 'project',
  'PC (other org)': 'project',
};

/** Where each role may be granted (the role catalogue); `platform_admin` and `owner` are no membership role. */
const VALID_LEVELS: Record<string, Level[]> = {
  org_admin: ['organization'],
  department_admin: ['department'],
  project_admin: ['project'],
  project_member: ['project'],
  viewer: ['organization', 'department', 'project'],
  platform_admin: [],
  owner: [],
};
const GRANTED_ROLES = Object.keys(VALID_LEVELS);

const GRANTERS: Record<string, Principal> = {
  'no grant': user([]),
  'org_admin of O1': user([grantAt.organization('org_admin')]),
  'department_admin of DA': user([grantAt.department('department_admin', 'DA')]),
  'project_admin of PA': user([grantAt.project('project_admin', 'PA')]),
  'project_member of PA': user([grantAt.project('project_member', 'PA')]),
  'viewer of O1': user([grantAt.organization('viewer')]),
  'viewer of DA': user([grantAt.department('viewer', 'DA')]),
  'viewer of PA': user([grantAt.project('viewer', 'PA')]),
  platform_admin: user([], ['platform_admin']),
};

const ALL_TARGETS = Object.keys(TARGETS) as TargetName[];
const ALL_MEMBERSHIP_ROLES = ['org_admin', 'department_admin', 'project_admin', 'project_member', 'viewer'];

/** What each granter may grant, and where; everyone not listed grants nothing. */
const AUTHORITY: Record<string, { targets: TargetName[]; roles: string[] }> = {
  platform_admin: { targets: ALL_TARGETS, roles: ALL_MEMBERSHIP_ROLES },
  'org_admin of O1': {
    targets: ['O1 (own org)', 'DA (own dept)', 'DB (sibling dept)', 'PA (own project)', 'PA2 (same dept, other project)', 'PB (sibling dept)'],
    roles: ALL_MEMBERSHIP_ROLES,
  },
  'department_admin of DA': {
    targets: ['DA (own dept)', 'PA (own project)', 'PA2 (same dept, other project)'],
    roles: ['department_admin', 'project_admin', 'project_member', 'viewer'],
  },
  'project_admin of PA': { targets: ['PA (own project)'], roles: ['project_admin', 'project_member', 'viewer'] },
};

function expected(granter: string, role: string, target: TargetName): string {
  if (!(VALID_LEVELS[role] ?? []).includes(LEVEL_OF[target])) return 'IAM_INVALID_ROLE_LEVEL';
  const authority = AUTHORITY[granter];
  return authority && authority.targets.includes(target) && authority.roles.includes(role) ? 'allowed' : 'AUTH_ROLE_ESCALATION';
}

function targetOf(name: TargetName): GrantTarget {
  const resource = RESOURCES[TARGETS[name]];
  return { level: LEVEL_OF[name], ...resource };
}

const CASES = Object.keys(GRANTERS).flatMap((granter) =>
  GRANTED_ROLES.flatMap((role) => ALL_TARGETS.map((target) => [granter, role, target, expected(granter, role, target)] as const)),
);

describe('canGrant', () => {
  it('covers every granter, role, level and branch', () => {
    expect(CASES).toHaveLength(9 * 7 * 9);
    expect(new Set(CASES.map(([, , , outcome]) => outcome))).toEqual(new Set(['allowed', 'AUTH_ROLE_ESCALATION', 'IAM_INVALID_ROLE_LEVEL']));
  });

  it.each(CASES)('%s granting %s at %s: %s', (granter, role, target, outcome) => {
    const verdict = canGrant(catalog, GRANTERS[granter]!, targetOf(target), role);

    expect(verdict.allowed ? 'allowed' : verdict.code).toBe(outcome);
  });

  it('uses whichever of several grants carries the authority', () => {
    const both = user([grantAt.project('project_member', 'PA'), grantAt.department('department_admin', 'DB')]);

    expect(canGrant(catalog, both, targetOf('PB (sibling dept)'), 'project_admin')).toEqual({ allowed: true });
    expect(canGrant(catalog, both, targetOf('PA (own project)'), 'viewer')).toMatchObject({ allowed: false, code: 'AUTH_ROLE_ESCALATION' });
  });

  it('says where a role may be granted when the level is wrong', () => {
    expect(canGrant(catalog, GRANTERS.platform_admin!, targetOf('O1 (own org)'), 'project_admin')).toEqual({
      allowed: false,
      code: 'IAM_INVALID_ROLE_LEVEL',
      message: 'project_admin can be granted at project level only',
    });
  });
});

describe('canChangeMembership', () => {
  const departmentAdmin = GRANTERS['department_admin of DA']!;

  it('needs authority over the current role and the new one', () => {
    expect(canChangeMembership(catalog, departmentAdmin, targetOf('PA (own project)'), 'project_admin', 'project_member')).toEqual({ allowed: true });
    expect(canChangeMembership(catalog, GRANTERS['project_admin of PA']!, targetOf('DA (own dept)'), 'viewer', 'department_admin')).toMatchObject({
      allowed: false,
      code: 'AUTH_ROLE_ESCALATION',
    });
    expect(canChangeMembership(catalog, departmentAdmin, targetOf('DA (own dept)'), 'viewer', 'org_admin')).toMatchObject({
      allowed: false,
      code: 'IAM_INVALID_ROLE_LEVEL',
    });
  });

  it('needs authority over the current role to remove a membership', () => {
    expect(canChangeMembership(catalog, departmentAdmin, targetOf('PB (sibling dept)'), 'project_member', null)).toMatchObject({
      allowed: false,
      code: 'AUTH_ROLE_ESCALATION',
    });
    expect(canChangeMembership(catalog, departmentAdmin, targetOf('PA2 (same dept, other project)'), 'project_member', null)).toEqual({ allowed: true });
  });
});

describe('requireGrantAuthority', () => {
  it('throws the refusal as an AppError with its code', () => {
    expect(() => requireGrantAuthority({ allowed: false, code: 'AUTH_ROLE_ESCALATION', message: 'You cannot grant org_admin here' })).toThrow(
      expect.objectContaining({ code: 'AUTH_ROLE_ESCALATION', message: 'You cannot grant org_admin here' }),
    );
    expect(() => requireGrantAuthority({ allowed: true })).not.toThrow();
  });
});
