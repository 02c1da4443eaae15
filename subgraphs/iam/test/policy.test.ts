import { randomUUID } from 'node:crypto';
import type { Principal } from '@aifactory/service-auth';
import { keysetPage } from '../src/data/registries-pages.js';
import { platformAdmin, refusal, startRegistriesHarness, type RegistriesHarness } from './registries-fixture.js';

type Direction = 'ceiling' | 'floor' | 'none';

describe('iam hierarchical policy', () => {
  let h: RegistriesHarness;
  let keyCount = 0;

  beforeAll(async () => {
    h = await startRegistriesHarness();
  });

  afterAll(async () => {
    await h?.close();
  });

  /** Each test defines its own keys, so global and plan values of one test bound nothing in another. */
  const defineKey = async (direction: Direction, options: { application?: 'per_project' | 'pooled'; default?: string } = {}) => {
    keyCount += 1;
    const key = `test.limits.k${keyCount}`;
    await h.policy.definePolicyKey(await h.caller(platformAdmin), {
      key,
      type: 'integer',
      unit: 'things',
      default: options.default ?? '100',
      direction,
      application: options.application ?? 'per_project',
      description: `A ${direction} for tests.`,
    });
    return key;
  };

  const admin = () => h.caller(platformAdmin);
  const set = async (level: 'global' | 'plan' | 'organization' | 'department' | 'project', targetId: string | null, key: string, value: unknown) =>
    h.policy.setPolicyValue(await admin(), { level, targetId, key, value });
  const effective = async (projectId: string, key: string) =>
    (await h.policy.effectivePolicy(await admin(), { projectId, keys: [key] }, keysetPage({}))).nodes[0];

  it('resolves a project value across global, plan, organization, department and project, naming the level it came from', async () => {
    const key = await defineKey('none');
    const { organizationId, departmentId, projectIds } = await h.organization();
    const [project, sibling] = projectIds;
    const plan = await h.policy.createPlan(await admin(), { slug: `plan-${randomUUID().slice(0, 8)}`, name: 'Gold' });
    await h.policy.assignPlan(await admin(), { organizationId, planId: plan.id });

    expect(await effective(project, key)).toMatchObject({ value: '100', level: 'default', sourceId: null });
    await set('global', null, key, '90');
    expect(await effective(project, key)).toMatchObject({ value: '90', level: 'global', sourceId: null });
    await h.policy.setPlanValue(await admin(), { planId: plan.id, key, value: '80' });
    expect(await effective(project, key)).toMatchObject({ value: '80', level: 'plan', sourceId: plan.id });
    await set('organization', organizationId, key, '70');
    expect(await effective(project, key)).toMatchObject({ value: '70', level: 'organization', sourceId: organizationId });
    await set('department', departmentId, key, '60');
    expect(await effective(project, key)).toMatchObject({ value: '60', level: 'department', sourceId: departmentId });
    await set('project', project, key, '50');
    expect(await effective(project, key)).toMatchObject({ value: '50', level: 'project', sourceId: project });
    expect(await effective(sibling, key)).toMatchObject({ value: '60', level: 'department', sourceId: departmentId });

    await h.policy.clearPolicyValue(await admin(), { level: 'department', targetId: departmentId, key });
    expect(await effective(sibling, key)).toMatchObject({ value: '70', level: 'organization' });
  });

  it('refuses at write a project value past a ceiling set above it, naming the bound', async () => {
    const key = await defineKey('ceiling');
    const { organizationId, projectIds } = await h.organization();
    await set('organization', organizationId, key, '40');

    const refused = await refusal(set('project', projectIds[0], key, '41'));
    await set('project', projectIds[0], key, '40');

    expect(refused).toMatchObject({
      code: 'POLICY_BOUND_VIOLATION',
      details: { key, level: 'project', bound: { level: 'organization', id: organizationId, value: '40' } },
    });
    expect(await effective(projectIds[0], key)).toMatchObject({ value: '40', level: 'project' });
  });

  it('refuses a value below a floor set above it', async () => {
    const key = await defineKey('floor', { default: '365' });
    const { departmentId, projectIds } = await h.organization();
    await set('department', departmentId, key, '400');

    const refused = await refusal(set('project', projectIds[1], key, '399'));
    await set('project', projectIds[1], key, '500');

    expect(refused).toMatchObject({ code: 'POLICY_BOUND_VIOLATION', details: { bound: { level: 'department', id: departmentId, value: '400' } } });
    expect(await effective(projectIds[1], key)).toMatchObject({ value: '500', level: 'project' });
  });

  it('refuses an upper value that would put a value set below it past the new bound, at every level above', async () => {
    const key = await defineKey('ceiling');
    const { organizationId, projectIds } = await h.organization();
    await set('project', projectIds[0], key, '50');
    const plan = await h.policy.createPlan(await admin(), { slug: `plan-${randomUUID().slice(0, 8)}`, name: 'Small' });
    await h.policy.setPlanValue(await admin(), { planId: plan.id, key, value: '10' });

    const organization = await refusal(set('organization', organizationId, key, '49'));
    const global = await refusal(set('global', null, key, '49'));
    const assigned = await refusal(h.policy.assignPlan(await admin(), { organizationId, planId: plan.id }));
    await set('organization', organizationId, key, '50');

    for (const refused of [organization, global]) {
      expect(refused).toMatchObject({ code: 'POLICY_BOUND_VIOLATION', details: { bound: { level: 'project', id: projectIds[0], value: '50' } } });
    }
    expect(assigned).toMatchObject({ code: 'POLICY_BOUND_VIOLATION', details: { key } });
    expect((await h.policy.policySnapshot(organizationId)).planId).toBeNull();
  });

  it('reports the pool a pooled value is shared in', async () => {
    const key = await defineKey('ceiling', { application: 'pooled', default: '1000' });
    const { organizationId, departmentId, projectIds } = await h.organization();

    const fromDefault = await effective(projectIds[0], key);
    await set('department', departmentId, key, '500');
    const fromDepartment = await effective(projectIds[0], key);

    expect(fromDefault).toMatchObject({ application: 'pooled', pool: { level: 'organization', id: organizationId } });
    expect(fromDepartment).toMatchObject({ value: '500', application: 'pooled', pool: { level: 'department', id: departmentId } });
    expect((await effective(projectIds[1], key))?.pool).toEqual({ level: 'department', id: departmentId });
  });

  it('refuses an unknown key and a value of the wrong type', async () => {
    const key = await defineKey('ceiling');
    const { organizationId } = await h.organization();
    const before = await h.version('policy');

    const unknown = await refusal(set('organization', organizationId, 'test.limits.nosuch', '1'));
    const notAnInteger = await refusal(set('organization', organizationId, key, '1.5'));
    const notAString = await refusal(set('organization', organizationId, key, 7));

    expect([unknown.code, notAnInteger.code, notAString.code]).toEqual(['POLICY_KEY_UNKNOWN', 'POLICY_VALUE_INVALID', 'POLICY_VALUE_INVALID']);
    expect(await h.version('policy')).toBe(before);
  });

  it('creates one snapshot version per change, and policy.changed carries it with its audit record', async () => {
    const key = await defineKey('ceiling');
    const { organizationId, departmentId } = await h.organization();
    const before = await h.version('policy');
    const caller = await admin();

    await h.policy.setPolicyValue(caller, { level: 'organization', targetId: organizationId, key, value: '30' });
    await h.policy.setPolicyValue(caller, { level: 'department', targetId: departmentId, key, value: '20' });
    await h.policy.setPolicyValue(caller, { level: 'department', targetId: departmentId, key, value: '20' });
    await h.policy.clearPolicyValue(caller, { level: 'department', targetId: departmentId, key });

    expect(await h.version('policy')).toBe(before + 3);
    expect((await h.policy.policySnapshot(organizationId)).version).toBe(before + 3);
    const events = await h.events(caller.correlationId);
    const changed = events.filter((event) => event.type === 'platform.iam.policy.changed');
    expect(changed.map((event) => [event.aggregate_id, event.aggregate_version, event.payload.version, event.payload.change])).toEqual([
      ['global', before + 1, before + 1, 'value_set'],
      ['global', before + 2, before + 2, 'value_set'],
      ['global', before + 3, before + 3, 'value_cleared'],
    ]);
    expect(changed[0]).toMatchObject({ organization_id: organizationId, payload: { level: 'organization', targetId: organizationId, key, value: '30' } });
    const audits = events.filter((event) => event.type === 'platform.audit.iam.policy.change');
    expect(audits).toHaveLength(3);
    expect(audits[0]?.payload).toMatchObject({ action: 'iam.policy.change', outcome: 'succeeded', scope: 'platform:policy:manage', correlationId: caller.correlationId });
  });

  it('serializes concurrent writes on the policy version: versions are gap-free and each is used once', async () => {
    const key = await defineKey('ceiling');
    const organizations = await Promise.all([h.organization(), h.organization(), h.organization()]);
    const before = await h.version('policy');
    const caller = await admin();

    await Promise.all(
      organizations.flatMap(({ organizationId, projectIds }) => [
        h.policy.setPolicyValue(caller, { level: 'organization', targetId: organizationId, key, value: '90' }),
        h.policy.setPolicyValue(caller, { level: 'project', targetId: projectIds[0], key, value: '10' }),
        h.policy.setPolicyValue(caller, { level: 'project', targetId: projectIds[1], key, value: '20' }),
      ]),
    );

    const versions = (await h.events(caller.correlationId))
      .filter((event) => event.type === 'platform.iam.policy.changed')
      .map((event) => event.aggregate_version)
      .sort((a, b) => a - b);
    expect(versions).toEqual(Array.from({ length: 9 }, (_, i) => before + 1 + i));
  });

  it('lets an organization admin set values in their organization, not in another, nor at global or plan level', async () => {
    const key = await defineKey('ceiling');
    const mine = await h.organization();
    const theirs = await h.organization();
    const orgAdmin: Principal = {
      type: 'user',
      subject: 'org-admin',
      platformRoles: [],
      grants: [{ level: 'organization', id: mine.organizationId, role: 'org_admin', org: mine.organizationId, dept: null }],
    };
    const caller = await h.caller(orgAdmin);

    await h.policy.setPolicyValue(caller, { level: 'department', targetId: mine.departmentId, key, value: '5' });
    const other = await refusal(h.policy.setPolicyValue(caller, { level: 'department', targetId: theirs.departmentId, key, value: '5' }));
    const global = await refusal(h.policy.setPolicyValue(caller, { level: 'global', targetId: null, key, value: '5' }));
    const read = await refusal(h.policy.effectivePolicy(caller, { projectId: theirs.projectIds[0] }, keysetPage({})));

    expect([other.code, global.code, read.code]).toEqual(['AUTH_FORBIDDEN', 'AUTH_FORBIDDEN', 'AUTH_FORBIDDEN']);
    expect((await h.policy.effectivePolicy(caller, { projectId: mine.projectIds[0], keys: [key] }, keysetPage({}))).nodes[0]).toMatchObject({
      value: '5',
      level: 'department',
    });
  });

  it('publishes policy.global and one snapshot per organization at the same version', async () => {
    const key = await defineKey('ceiling');
    const { organizationId, projectIds } = await h.organization();
    await set('project', projectIds[0], key, '3');

    const snapshots = await h.policy.policySnapshots();
    const version = await h.version('policy');

    expect(snapshots[0]).toMatchObject({ organizationId: null, planId: null, version });
    expect(snapshots.every((snapshot) => snapshot.version === version)).toBe(true);
    const own = snapshots.find((snapshot) => snapshot.organizationId === organizationId);
    expect(own?.layers.projects[projectIds[0]]?.values[key]).toBe('3');
    expect(own?.keys[key]).toMatchObject({ type: 'integer', direction: 'ceiling' });
    expect(await h.policy.policySnapshot(null)).toMatchObject({ organizationId: null, planId: null, version, layers: { organization: {}, projects: {} } });
  });
});
