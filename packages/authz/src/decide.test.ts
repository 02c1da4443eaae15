import type { Principal } from '@aifactory/service-auth';
import { apiKey, grantAt, IDS, RESOURCES, service, testCatalog, user } from '../test/fixtures.js';
import { can, holdsScope } from './decide.js';

const catalog = testCatalog();
const allowed = (principal: Principal, scope: string, resource: keyof typeof RESOURCES) =>
  can(catalog, principal, scope, RESOURCES[resource]).allowed;

describe('can: membership coverage', () => {
  it('lets an organization grant cover every resource of its organization and nothing of another', () => {
    const admin = user([grantAt.organization('org_admin')]);

    for (const place of ['O1', 'DA', 'DB', 'PA', 'PB'] as const) expect(allowed(admin, 'gpuaas:allocation:create', place)).toBe(true);
    for (const place of ['O2', 'DC', 'PC'] as const) expect(allowed(admin, 'gpuaas:allocation:create', place)).toBe(false);
  });

  it('lets a department grant cover its department and its projects only', () => {
    const admin = user([grantAt.department('department_admin', 'DA')]);

    expect(allowed(admin, 'gpuaas:allocation:create', 'DA')).toBe(true);
    expect(allowed(admin, 'gpuaas:allocation:create', 'PA')).toBe(true);
    expect(allowed(admin, 'gpuaas:allocation:create', 'PA2')).toBe(true);
    expect(allowed(admin, 'gpuaas:allocation:create', 'DB')).toBe(false);
    expect(allowed(admin, 'gpuaas:allocation:create', 'PB')).toBe(false);
    expect(allowed(admin, 'gpuaas:allocation:create', 'O1')).toBe(false);
  });

  it('lets a project grant cover its own project only', () => {
    const member = user([grantAt.project('project_member', 'PA')]);

    expect(allowed(member, 'gpuaas:allocation:create', 'PA')).toBe(true);
    expect(allowed(member, 'gpuaas:allocation:create', 'PA2')).toBe(false);
    expect(allowed(member, 'gpuaas:allocation:create', 'DA')).toBe(false);
    expect(allowed(member, 'gpuaas:allocation:create', 'O1')).toBe(false);
  });

  it('refuses a scope the role does not carry even where the grant covers', () => {
    const viewer = user([grantAt.organization('viewer')]);

    expect(can(catalog, viewer, 'gpuaas:allocation:create', RESOURCES.PA)).toEqual({ allowed: false, lifecycle: 'active', reason: 'scope_not_held' });
    expect(allowed(viewer, 'gpuaas:allocation:read', 'PA')).toBe(true);
  });

  it('says resource_not_covered when the scope is held elsewhere', () => {
    const member = user([grantAt.project('project_member', 'PB')]);

    expect(can(catalog, member, 'gpuaas:allocation:read', RESOURCES.PA)).toEqual({
      allowed: false,
      lifecycle: 'active',
      reason: 'resource_not_covered',
    });
  });

  it('lets any grant inside an organization cover the organization itself for a member-visible scope', () => {
    const member = user([grantAt.project('project_member', 'PA')]);

    expect(allowed(member, 'platform:organization:read', 'O1')).toBe(true);
    expect(allowed(member, 'platform:organization:read', 'O2')).toBe(false);
    // Member-visible reaches the organization node, not sibling departments or projects.
    expect(allowed(member, 'platform:organization:read', 'DB')).toBe(false);
    expect(allowed(member, 'platform:project:read', 'O1')).toBe(false);
  });

  it('covers by id alone for a grant minted without org and dept', () => {
    const bare = user([
      { level: 'department', id: IDS.DA, role: 'department_admin' },
      { level: 'project', id: IDS.PB, role: 'project_member' },
    ]);

    expect(allowed(bare, 'gpuaas:allocation:create', 'PA')).toBe(true);
    expect(allowed(bare, 'gpuaas:allocation:create', 'PB')).toBe(true);
    expect(allowed(bare, 'gpuaas:allocation:create', 'PC')).toBe(false);
    // Without `org` it cannot show that it lies inside the organization.
    expect(allowed(bare, 'platform:organization:read', 'O1')).toBe(false);
  });

  it('refuses a grant whose org disagrees with the resource', () => {
    const forged = user([{ level: 'project', id: IDS.PA, role: 'project_admin', org: IDS.O2, dept: IDS.DA }]);

    expect(allowed(forged, 'gpuaas:allocation:create', 'PA')).toBe(false);
  });

  it('gives nothing for a grant naming a platform role', () => {
    const forged = user([grantAt.organization('platform_admin')]);

    expect(allowed(forged, 'gpuaas:allocation:read', 'PA')).toBe(false);
  });
});

describe('can: platform roles', () => {
  it('lets platform_admin hold every registered scope everywhere', () => {
    const operator = user([], ['platform_admin']);

    expect(allowed(operator, 'platform:plan:manage', 'O2')).toBe(true);
    expect(allowed(operator, 'gpuaas:allocation:create', 'PC')).toBe(true);
  });

  it('lets internal_developer hold its listed scopes everywhere and nothing else', () => {
    const developer = user([], ['internal_developer']);

    expect(allowed(developer, 'platform:schema:read', 'PC')).toBe(true);
    expect(allowed(developer, 'gpuaas:allocation:read', 'PC')).toBe(false);
  });
});

describe('can: API keys', () => {
  it("holds the key's scopes on the key's project only", () => {
    const key = apiKey(IDS.PA, ['gpuaas:allocation:read']);

    expect(allowed(key, 'gpuaas:allocation:read', 'PA')).toBe(true);
    expect(can(catalog, key, 'gpuaas:allocation:read', RESOURCES.PA2)).toMatchObject({ allowed: false, reason: 'resource_not_covered' });
    expect(allowed(key, 'gpuaas:allocation:read', 'DA')).toBe(false);
    expect(can(catalog, key, 'gpuaas:allocation:create', RESOURCES.PA)).toMatchObject({ allowed: false, reason: 'scope_not_held' });
  });

  it('lets a key see its own organization itself through a member-visible scope it carries, and nothing more', () => {
    const key = apiKey(IDS.PA, ['platform:organization:read', 'gpuaas:allocation:read'], IDS.O1);

    expect(allowed(key, 'platform:organization:read', 'O1')).toBe(true);
    expect(allowed(key, 'platform:organization:read', 'O2')).toBe(false);
    expect(allowed(key, 'platform:organization:read', 'DA')).toBe(false);
    // Not member-visible: the organization node stays out of reach.
    expect(allowed(key, 'gpuaas:allocation:read', 'O1')).toBe(false);
    expect(allowed({ ...key, scopes: [] }, 'platform:organization:read', 'O1')).toBe(false);
  });

  it('ignores grants and platform roles on an API-key principal', () => {
    const key = { ...apiKey(IDS.PA, []), grants: [grantAt.organization('org_admin')], platformRoles: ['platform_admin' as const] };

    expect(allowed(key, 'gpuaas:allocation:read', 'PA')).toBe(false);
    expect(holdsScope(catalog, key, 'gpuaas:allocation:read').allowed).toBe(false);
  });
});

describe('can: platform services', () => {
  it("holds the token's scopes on every resource and nothing else", () => {
    const billingReader = service(['platform:project:read']);

    for (const place of ['O1', 'O2', 'PA', 'PC'] as const) expect(allowed(billingReader, 'platform:project:read', place)).toBe(true);
    expect(can(catalog, billingReader, 'gpuaas:allocation:read', RESOURCES.PA)).toMatchObject({ allowed: false, reason: 'scope_not_held' });
    expect(holdsScope(catalog, { ...billingReader, grants: [grantAt.organization('org_admin')] }, 'gpuaas:allocation:read').allowed).toBe(false);
  });
});

describe('lifecycle', () => {
  it('reports a deprecated scope on allow and deny alike', () => {
    const viewer = user([grantAt.project('viewer', 'PA')]);

    expect(can(catalog, viewer, 'gpuaas:node:list', RESOURCES.PA)).toEqual({ allowed: true, lifecycle: 'deprecated' });
    expect(can(catalog, viewer, 'gpuaas:node:list', RESOURCES.PB)).toMatchObject({ allowed: false, lifecycle: 'deprecated' });
  });

  it('throws for a retired or unregistered scope even for platform_admin', () => {
    const operator = user([], ['platform_admin']);

    expect(() => can(catalog, operator, 'gpuaas:node:reboot', RESOURCES.PA)).toThrow(expect.objectContaining({ code: 'AUTH_SCOPE_RETIRED' }));
    expect(() => holdsScope(catalog, operator, 'gpuaas:node:format')).toThrow(expect.objectContaining({ code: 'AUTH_SCOPE_UNREGISTERED' }));
  });
});

describe('holdsScope', () => {
  it('holds a scope carried by any grant, wherever it is', () => {
    expect(holdsScope(catalog, user([grantAt.project('project_member', 'PC')]), 'gpuaas:allocation:create')).toEqual({
      allowed: true,
      lifecycle: 'active',
    });
    expect(holdsScope(catalog, user([grantAt.project('viewer', 'PC')]), 'gpuaas:allocation:create')).toEqual({
      allowed: false,
      lifecycle: 'active',
      reason: 'scope_not_held',
    });
  });

  it('holds through platform roles and API-key scopes', () => {
    expect(holdsScope(catalog, user([], ['internal_developer']), 'platform:schema:read').allowed).toBe(true);
    expect(holdsScope(catalog, apiKey(IDS.PA, ['gpuaas:allocation:read']), 'gpuaas:allocation:read').allowed).toBe(true);
    expect(holdsScope(catalog, user([]), 'platform:schema:read').allowed).toBe(false);
  });
});
