import { encodeCursor, keysetPage } from '../src/data/registries-pages.js';
import { internalDeveloper, platformAdmin, refusal, startRegistriesHarness, type RegistriesHarness } from './registries-fixture.js';

describe('iam registries', () => {
  let h: RegistriesHarness;

  beforeAll(async () => {
    h = await startRegistriesHarness();
  });

  afterAll(async () => {
    await h?.close();
  });

  it('bumps the scope registry version and writes registry.changed with its audit record in the same transaction', async () => {
    const before = await h.version('scopes');
    const caller = await h.caller(platformAdmin);

    const scope = await h.registries.registerScope(caller, {
      id: 'gpuaas:quota:read',
      product: 'gpuaas',
      description: 'See GPU quotas.',
      riskClass: 'low',
    });

    expect(await h.version('scopes')).toBe(before + 1);
    expect(scope).toMatchObject({ id: 'gpuaas:quota:read', productId: 'gpuaas', lifecycle: 'active', registryVersion: before + 1 });
    const events = await h.events(caller.correlationId);
    expect(events.map((event) => event.type).sort()).toEqual(['platform.audit.iam.registry.change', 'platform.iam.registry.changed']);
    const changed = events.find((event) => event.type === 'platform.iam.registry.changed');
    expect(changed).toMatchObject({
      aggregate_type: 'registry',
      aggregate_id: 'scopes',
      aggregate_version: before + 1,
      payload: { registry: 'scopes', version: before + 1, entryId: 'gpuaas:quota:read', change: 'registered' },
    });
    const audit = events.find((event) => event.type === 'platform.audit.iam.registry.change');
    expect(audit?.payload).toMatchObject({
      action: 'iam.registry.change',
      outcome: 'succeeded',
      privileged: true,
      principal: { type: 'user', id: 'platform-admin' },
      scope: 'platform:registry:manage',
      correlationId: caller.correlationId,
    });
  });

  it.each(['gpuaas:Quota:read', 'gpuaas:quota', 'gpuaas:quota:read:all', 'gpuaas::read', '1gpuaas:quota:read'])(
    'refuses the scope name %s, which breaks <product>:<resource>:<verb>',
    async (id) => {
      const before = await h.version('scopes');

      const refused = await refusal(h.registries.registerScope(await h.caller(platformAdmin), { id, product: 'gpuaas', description: 'x', riskClass: 'low' }));

      expect(refused.code).toBe('BAD_REQUEST_INVALID_INPUT');
      expect(await h.version('scopes')).toBe(before);
    },
  );

  it('refuses a scope of an unregistered product, and one named for another product', async () => {
    const caller = await h.caller(platformAdmin);

    const unknown = await refusal(h.registries.registerScope(caller, { id: 'nosuch:thing:read', product: 'nosuch', description: 'x', riskClass: 'low' }));
    const mismatched = await refusal(h.registries.registerScope(caller, { id: 'gpuaas:thing:read', product: 'platform', description: 'x', riskClass: 'low' }));

    expect(unknown).toMatchObject({ code: 'BAD_REQUEST_INVALID_INPUT', details: { product: 'nosuch' } });
    expect(mismatched.code).toBe('BAD_REQUEST_INVALID_INPUT');
    expect(await h.events(caller.correlationId)).toEqual([]);
  });

  it('refuses duplicates with IAM_DUPLICATE and leaves every version as it was', async () => {
    const caller = await h.caller(platformAdmin);
    const versions = [await h.version('scopes'), await h.version('products')];

    const scope = await refusal(
      h.registries.registerScope(caller, { id: 'platform:organization:read', product: 'platform', description: 'again', riskClass: 'low' }),
    );
    const product = await refusal(h.registries.registerProduct(caller, { id: 'gpuaas', displayName: 'again', owner: 'x' }));

    expect([scope.code, product.code]).toEqual(['IAM_DUPLICATE', 'IAM_DUPLICATE']);
    expect([await h.version('scopes'), await h.version('products')]).toEqual(versions);
    expect(await h.events(caller.correlationId)).toEqual([]);
  });

  it('reflects a deprecated and then a retired scope in the catalogue without removing it from its roles', async () => {
    const caller = await h.caller(platformAdmin);
    await h.registries.registerScope(caller, { id: 'gpuaas:snapshot:read', product: 'gpuaas', description: 'See snapshots.', riskClass: 'low' });
    await h.registries.setRoleScopes(caller, { role: 'internal_developer', scopes: ['platform:registry:read', 'gpuaas:snapshot:read'] });
    const developer = () => h.caller(internalDeveloper);
    expect((await developer()).access.requireHolds('gpuaas:snapshot:read')).toBeUndefined();

    await h.registries.setScopeLifecycle(caller, { scope: 'gpuaas:snapshot:read', lifecycle: 'deprecated' });
    const deprecated = await h.registries.catalogSnapshot();
    const flagged: string[] = [];
    const onDeprecated = await h.caller(internalDeveloper, (scope) => flagged.push(scope));

    expect(deprecated.scopes['gpuaas:snapshot:read']?.lifecycle).toBe('deprecated');
    expect(deprecated.registryVersions.scopes).toBe(await h.version('scopes'));
    // The catalogue's own version is the sum of its registries', so a role change alone also reaches the read model.
    expect(deprecated.version).toBe(Object.values(deprecated.registryVersions).reduce((sum, each) => sum + each, 0));
    expect(onDeprecated.access.holds('gpuaas:snapshot:read')).toBe(true);
    expect(flagged).toEqual(['gpuaas:snapshot:read']);

    await h.registries.setScopeLifecycle(caller, { scope: 'gpuaas:snapshot:read', lifecycle: 'retired' });
    const retired = await h.registries.catalogSnapshot();
    const afterRetirement = await developer();

    expect(retired.scopes['gpuaas:snapshot:read']?.lifecycle).toBe('retired');
    expect(retired.platformRoles.internal_developer?.scopes).toContain('gpuaas:snapshot:read');
    expect(await refusal(Promise.resolve().then(() => afterRetirement.access.requireHolds('gpuaas:snapshot:read')))).toMatchObject({
      code: 'AUTH_SCOPE_RETIRED',
    });
  });

  it('announces each lifecycle change as its own scope registry version', async () => {
    const caller = await h.caller(platformAdmin);
    await h.registries.registerScope(caller, { id: 'gpuaas:image:read', product: 'gpuaas', description: 'See images.', riskClass: 'low' });
    const before = await h.version('scopes');

    await h.registries.setScopeLifecycle(caller, { scope: 'gpuaas:image:read', lifecycle: 'deprecated' });
    await h.registries.setScopeLifecycle(caller, { scope: 'gpuaas:image:read', lifecycle: 'deprecated' });
    await h.registries.setScopeLifecycle(caller, { scope: 'gpuaas:image:read', lifecycle: 'active' });

    expect(await h.version('scopes')).toBe(before + 2);
    const changes = (await h.events(caller.correlationId))
      .filter((event) => event.type === 'platform.iam.registry.changed')
      .map((event) => [event.aggregate_version, event.payload.change]);
    expect(changes).toEqual([
      [before, 'registered'],
      [before + 1, 'deprecated'],
      [before + 2, 'reactivated'],
    ]);
  });

  it('maps a role only to registered scopes that are not retired', async () => {
    const caller = await h.caller(platformAdmin);
    await h.registries.registerScope(caller, { id: 'gpuaas:volume:read', product: 'gpuaas', description: 'See volumes.', riskClass: 'low' });
    await h.registries.registerScope(caller, { id: 'gpuaas:volume:delete', product: 'gpuaas', description: 'Delete volumes.', riskClass: 'high' });
    await h.registries.setScopeLifecycle(caller, { scope: 'gpuaas:volume:delete', lifecycle: 'retired' });
    const before = await h.version('roles');

    const unknown = await refusal(h.registries.setRoleScopes(caller, { role: 'viewer', scopes: ['gpuaas:volume:read', 'gpuaas:volume:list'] }));
    const retired = await refusal(h.registries.setRoleScopes(caller, { role: 'viewer', scopes: ['gpuaas:volume:delete'] }));
    const viewer = (await h.registries.catalogSnapshot()).roles.viewer?.scopes ?? [];
    await h.registries.setRoleScopes(caller, { role: 'viewer', scopes: [...viewer, 'gpuaas:volume:read'] });

    expect(unknown).toMatchObject({ code: 'IAM_SCOPE_UNKNOWN', details: { scopes: ['gpuaas:volume:list'] } });
    expect(retired).toMatchObject({ code: 'IAM_SCOPE_UNKNOWN', details: { scopes: ['gpuaas:volume:delete'] } });
    expect(await h.version('roles')).toBe(before + 1);
    expect((await h.registries.catalogSnapshot()).roles.viewer?.scopes).toContain('gpuaas:volume:read');
  });

  it('lists every registered scope for platform_admin, including one registered just now', async () => {
    await h.registries.registerScope(await h.caller(platformAdmin), {
      id: 'tokenfactory:batch:read',
      product: 'tokenfactory',
      description: 'See batches.',
      riskClass: 'low',
    });

    const catalog = await h.registries.catalogSnapshot();

    expect(new Set(catalog.platformRoles.platform_admin?.scopes)).toEqual(new Set(Object.keys(catalog.scopes)));
    expect(catalog.scopes['tokenfactory:batch:read']).toEqual({ product: 'tokenfactory', lifecycle: 'active', riskClass: 'low', memberVisible: false });
  });

  it('versions products, resource types and audit actions the same way', async () => {
    const caller = await h.caller(platformAdmin);
    const before = await Promise.all(['products', 'resource_types', 'audit_actions'].map((name) => h.version(name)));

    await h.registries.registerProduct(caller, { id: 'inference', displayName: 'Inference', owner: 'inference' });
    await h.registries.registerResourceType(caller, { id: 'inference_endpoint', product: 'inference', description: 'An endpoint.' });
    await h.registries.registerAuditAction(caller, {
      id: 'inference.endpoint.create',
      product: 'inference',
      retentionClass: 'standard',
      privileged: false,
      description: 'An endpoint was created.',
    });

    const after = await Promise.all(['products', 'resource_types', 'audit_actions'].map((name) => h.version(name)));
    expect(after).toEqual(before.map((version) => version + 1));
    const registries = (await h.events(caller.correlationId)).filter((event) => event.type === 'platform.iam.registry.changed').map((event) => event.aggregate_id);
    expect(registries).toEqual(['products', 'resource_types', 'audit_actions']);
  });

  it('lets only platform admins change a registry, and audits the refusal', async () => {
    const caller = await h.caller(internalDeveloper);

    const refused = await refusal(h.registries.registerProduct(caller, { id: 'sneaky', displayName: 'Sneaky', owner: 'x' }));

    expect(refused.code).toBe('AUTH_FORBIDDEN');
    expect(h.denies.map((deny) => [deny.correlationId, deny.record.scope])).toContainEqual([caller.correlationId, 'platform:registry:manage']);
    expect(await h.events(caller.correlationId)).toEqual([]);
  });

  it('pages a list by keyset cursor, with filters', async () => {
    const caller = await h.caller(platformAdmin);

    const first = await h.registries.products(caller, keysetPage({ first: 2 }));
    const rest = await h.registries.products(caller, keysetPage({ first: 50, after: encodeCursor(first.nodes.at(-1)!.id) }));
    const retiredPlatform = await h.registries.scopes(caller, { productId: 'platform', lifecycle: 'retired' }, keysetPage({}));

    expect(first.nodes).toHaveLength(2);
    expect(first.hasNextPage).toBe(true);
    expect(rest.hasNextPage).toBe(false);
    const ids = [...first.nodes, ...rest.nodes].map((product) => product.id);
    expect(ids).toEqual([...ids].sort());
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(expect.arrayContaining(['platform', 'gpuaas', 'appplatform', 'tokenfactory']));
    expect(retiredPlatform.nodes).toEqual([]);
    expect(await refusal(Promise.resolve().then(() => h.registries.products(caller, keysetPage({ after: 'not-a-cursor' }))))).toMatchObject({ code: 'BAD_REQUEST_INVALID_INPUT' });
  });
});
