import { loadRegistryData } from '@aifactory/contracts';
import { AppError } from '@aifactory/errors';
import { PUBLISHED_AT, ROLE_ROWS, SCOPE_ROWS, testCatalog } from '../test/fixtures.js';
import { buildCatalogSnapshot, Catalog, isScopeName } from './catalog.js';
import { catalogSnapshotSchema } from './model.js';

describe('isScopeName', () => {
  it.each(['gpuaas:allocation:create', 'platform:api_key:manage', 'a1:b_2:c3'])('accepts %s', (name) => {
    expect(isScopeName(name)).toBe(true);
  });

  it.each(['gpuaas:allocation', 'GPUaaS:allocation:create', 'gpuaas:allocation:create:now', '1gpu:a:b', 'gpuaas::read', 'gpuaas:alloc-ation:read'])(
    'refuses %s',
    (name) => {
      expect(isScopeName(name)).toBe(false);
    },
  );
});

describe('buildCatalogSnapshot', () => {
  it('publishes a snapshot the read model schema accepts, versioned by the sum of its registries, so a role change alone grows it', () => {
    const snapshot = buildCatalogSnapshot({ scopes: SCOPE_ROWS, roles: ROLE_ROWS, registryVersions: { scopes: 7, roles: 3 }, publishedAt: PUBLISHED_AT });

    expect(catalogSnapshotSchema.parse(snapshot)).toEqual(snapshot);
    expect(snapshot.version).toBe(10);
    expect(snapshot.registryVersions).toEqual({ scopes: 7, roles: 3 });
    expect(Object.keys(snapshot.roles).sort()).toEqual(['department_admin', 'org_admin', 'project_admin', 'project_member', 'viewer']);
    expect(snapshot.scopes['platform:project:read']).toEqual({ product: 'platform', lifecycle: 'active', riskClass: 'low', memberVisible: false });
  });

  it("expands platform_admin's * into every registered scope", () => {
    const snapshot = buildCatalogSnapshot({ scopes: SCOPE_ROWS, roles: ROLE_ROWS, registryVersions: { scopes: 1 }, publishedAt: PUBLISHED_AT });

    expect(snapshot.platformRoles.platform_admin?.scopes.sort()).toEqual(SCOPE_ROWS.map((row) => row.id).sort());
    expect(snapshot.platformRoles.internal_developer?.scopes).toEqual(['platform:schema:read']);
  });

  it('builds from the committed registry files', () => {
    const { scopes, roles } = loadRegistryData();

    const catalog = new Catalog(buildCatalogSnapshot({ scopes, roles, registryVersions: { scopes: 1 }, publishedAt: PUBLISHED_AT }));

    expect(catalog.platformRoleScopes('platform_admin').size).toBe(scopes.length);
    expect(catalog.scope('platform:organization:read')?.memberVisible).toBe(true);
    expect(catalog.roleRank('org_admin')).toBe(4);
  });

  it('refuses a role naming an unregistered scope, inherited object keys included', () => {
    const inherited = [{ id: 'viewer', kind: 'membership' as const, levels: ['project' as const], rank: 0, scopes: ['constructor'] }];
    expect(() => buildCatalogSnapshot({ scopes: SCOPE_ROWS, roles: inherited, registryVersions: { scopes: 1 }, publishedAt: PUBLISHED_AT })).toThrow(
      /unregistered scope constructor/,
    );

    const roles = [{ id: 'viewer', kind: 'membership' as const, levels: ['project' as const], rank: 0, scopes: ['gpuaas:allocation:reed'] }];

    expect(() => buildCatalogSnapshot({ scopes: SCOPE_ROWS, roles, registryVersions: { scopes: 1 }, publishedAt: PUBLISHED_AT })).toThrow(
      /unregistered scope gpuaas:allocation:reed/,
    );
  });

  it('refuses a malformed scope, one not named for its product, and a missing scope registry version', () => {
    const build = (scopes: typeof SCOPE_ROWS, registryVersions: Record<string, number> = { scopes: 1 }) =>
      buildCatalogSnapshot({ scopes, roles: [], registryVersions, publishedAt: PUBLISHED_AT });

    expect(() => build([{ id: 'gpuaas:Allocation:read', product: 'gpuaas', riskClass: 'low', lifecycle: 'active' }])).toThrow(/does not match/);
    expect(() => build([{ id: 'gpuaas:allocation:read', product: 'platform', riskClass: 'low', lifecycle: 'active' }])).toThrow(/its product/);
    expect(() => build([], { roles: 1 })).toThrow(/"scopes"/);
  });
});

describe('Catalog', () => {
  const catalog = testCatalog();

  it('answers role scopes, ranks and levels from the snapshot', () => {
    expect(catalog.version).toBe(10);
    expect(catalog.rolesScopes('viewer').has('gpuaas:allocation:read')).toBe(true);
    expect(catalog.rolesScopes('viewer').has('gpuaas:allocation:create')).toBe(false);
    expect(catalog.roleRank('department_admin')).toBe(3);
    expect(catalog.roleLevels('viewer')).toEqual(['organization', 'department', 'project']);
  });

  it('keeps platform roles out of membership lookups', () => {
    expect(catalog.rolesScopes('platform_admin').size).toBe(0);
    expect(catalog.roleRank('platform_admin')).toBeUndefined();
    expect(catalog.roleLevels('platform_admin')).toEqual([]);
    expect(catalog.platformRoleScopes('platform_admin').has('platform:plan:manage')).toBe(true);
    expect(catalog.platformRoleScopes('org_admin').size).toBe(0);
  });

  it('answers nothing for unknown roles and scopes, including inherited object keys', () => {
    expect(catalog.rolesScopes('owner').size).toBe(0);
    expect(catalog.isRegistered('toString')).toBe(false);
    expect(catalog.scope('constructor')).toBeUndefined();
  });

  it('lets active and deprecated scopes be used', () => {
    expect(catalog.usable('gpuaas:allocation:read')).toBe('active');
    expect(catalog.usable('gpuaas:node:list')).toBe('deprecated');
  });

  it('throws AUTH_SCOPE_RETIRED for a retired scope and AUTH_SCOPE_UNREGISTERED for an unknown one', () => {
    expect(() => catalog.usable('gpuaas:node:reboot')).toThrow(expect.objectContaining({ code: 'AUTH_SCOPE_RETIRED' }));
    expect(() => catalog.usable('gpuaas:node:delete')).toThrow(AppError);
    expect(() => catalog.usable('gpuaas:node:delete')).toThrow(expect.objectContaining({ code: 'AUTH_SCOPE_UNREGISTERED' }));
  });
});
