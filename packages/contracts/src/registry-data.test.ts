import { loadRegistryData, SCOPE_PATTERN } from './registry-data.js';
import { EVENT_PUBLISHERS } from './subjects.js';

describe('committed registry data', () => {
  const data = loadRegistryData();
  const products = new Set(data.products.map((product) => product.id));
  const scopes = new Set(data.scopes.map((scope) => scope.id));

  it('has the four products', () => {
    expect([...products].sort()).toEqual(['appplatform', 'gpuaas', 'platform', 'tokenfactory']);
  });

  it('names every scope <product>:<resource>:<verb> under a registered product, once', () => {
    expect(scopes.size).toBe(data.scopes.length);
    for (const scope of data.scopes) {
      expect(scope.id).toMatch(SCOPE_PATTERN);
      expect(scope.id.split(':')[0]).toBe(scope.product);
      expect(products.has(scope.product)).toBe(true);
    }
  });

  it('maps every role only to registered scopes, at levels ranked from org_admin down', () => {
    for (const role of data.roles) {
      for (const scope of role.scopes) {
        if (scope !== '*') expect(scopes.has(scope)).toBe(true);
      }
      expect(role.kind === 'platform' ? role.levels.length === 0 : role.levels.length > 0).toBe(true);
    }
    const rank = Object.fromEntries(data.roles.map((role) => [role.id, role.rank]));
    expect(rank).toMatchObject({ org_admin: 4, department_admin: 3, project_admin: 2, project_member: 1, viewer: 0 });
  });

  it('gives a higher role every scope of the roles below it', () => {
    const byId = new Map(data.roles.map((role) => [role.id, new Set(role.scopes)]));
    const chain = ['viewer', 'project_member', 'project_admin', 'department_admin', 'org_admin'];
    for (let index = 1; index < chain.length; index += 1) {
      const lower = byId.get(chain[index - 1]!)!;
      const higher = byId.get(chain[index]!)!;
      for (const scope of lower) expect(higher.has(scope)).toBe(true);
    }
  });

  it('registers an access deny action for every publisher, and only actions of registered products', () => {
    const actions = new Set(data.auditActions.map((action) => action.id));
    for (const publisher of EVENT_PUBLISHERS) expect(actions.has(`${publisher}.access.deny`)).toBe(true);
    for (const action of data.auditActions) {
      expect(products.has(action.product)).toBe(true);
      expect(EVENT_PUBLISHERS as readonly string[]).toContain(action.id.split('.')[0]);
    }
  });

  it('gives every policy key a default of its own type', () => {
    for (const key of data.policyKeys) {
      if (key.type === 'boolean') expect(typeof key.default).toBe('boolean');
      if (key.type === 'integer') expect(key.default).toMatch(/^-?\d+$/);
      if (key.type === 'decimal') expect(key.default).toMatch(/^-?\d+(\.\d+)?$/);
      if (key.type === 'duration') expect(key.default).toMatch(/^P/);
      if (key.type === 'enum') expect(key.enumValues).toContain(key.default);
    }
  });

  it("lets each service identity claim only registered scopes, and reserves the gateway's name", () => {
    const names = data.serviceIdentities.map((identity) => identity.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).not.toContain('gateway');
    for (const identity of data.serviceIdentities) {
      for (const scope of identity.scopes) expect(scopes.has(scope)).toBe(true);
    }
    expect(data.serviceIdentities.find((identity) => identity.name === 'tokenfactory')).toMatchObject({
      scopes: ['platform:billing:read'],
      audiences: ['billing'],
    });
  });

  it('marks rows added after migration 0004 with the later migration that inserts them', () => {
    const marked = [...data.scopes, ...data.auditActions, ...data.policyKeys].filter((row) => row.since !== undefined).map((row) => ('key' in row ? row.key : row.id));
    expect(marked).toEqual(
      expect.arrayContaining(['platform:service_identity:manage', 'iam.api_key.create', 'gateway.api_key.refuse', 'platform.api_keys.max_ttl']),
    );
    expect(data.scopes.find((scope) => scope.id === 'platform:api_key:manage')?.since).toBeUndefined();
  });
});
