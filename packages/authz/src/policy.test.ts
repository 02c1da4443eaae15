import { IDS } from '../test/fixtures.js';
import type { PolicyKeyDef, PolicySnapshot } from './model.js';
import { checkPolicyWrite, effectivePolicy, policyLimits, type PolicyWrite } from './policy.js';

function key(def: Partial<PolicyKeyDef> & Pick<PolicyKeyDef, 'key' | 'type' | 'default' | 'direction'>): PolicyKeyDef {
  return { unit: null, application: 'per_project', enumValues: null, description: def.key, lifecycle: 'active', ...def };
}

const RPM = 'platform.gateway.requests_per_minute';
const RETENTION = 'platform.audit.retention_days';
const BUDGET = 'billing.budget.monthly_spend';
const GPUS = 'gpuaas.gpus.max_per_project';
const DURATION = 'gpuaas.allocation.max_duration';
const REGION = 'gpuaas.allocation.default_region';
const BETA = 'gpuaas.beta.enabled';
const OLD = 'gpuaas.legacy.flag';

/**
 * Organization O1 on plan "pro": DA holds PA (and PA2, which has no values
 * yet), DB holds PB.
 */
const SNAPSHOT: PolicySnapshot = {
  version: 12,
  organizationId: IDS.O1,
  planId: 'plan-pro',
  keys: {
    [RPM]: key({ key: RPM, type: 'integer', default: '1200', direction: 'ceiling' }),
    [RETENTION]: key({ key: RETENTION, type: 'integer', default: '365', direction: 'floor' }),
    [BUDGET]: key({ key: BUDGET, type: 'decimal', default: '100000000', direction: 'ceiling', application: 'pooled' }),
    [GPUS]: key({ key: GPUS, type: 'integer', default: '8', direction: 'ceiling' }),
    [DURATION]: key({ key: DURATION, type: 'duration', default: 'P30D', direction: 'ceiling' }),
    [REGION]: key({ key: REGION, type: 'enum', default: 'uae-north', direction: 'none', enumValues: ['uae-north', 'uae-central'] }),
    [BETA]: key({ key: BETA, type: 'boolean', default: true, direction: 'ceiling' }),
    [OLD]: key({ key: OLD, type: 'boolean', default: false, direction: 'none', lifecycle: 'retired' }),
  },
  layers: {
    global: { [RPM]: '5000', [RETENTION]: '30' },
    plan: { [RPM]: '3000', [GPUS]: '16' },
    organization: { [RPM]: '2000', [BUDGET]: '5000.50', [DURATION]: 'P7D', [BETA]: false },
    departments: { [IDS.DA]: { [RPM]: '1000', [BUDGET]: '1000.25' }, [IDS.DB]: {} },
    projects: {
      [IDS.PA]: { departmentId: IDS.DA, values: { [RPM]: '500' } },
      [IDS.PB]: { departmentId: IDS.DB, values: { [RETENTION]: '90' } },
    },
  },
  publishedAt: '2026-01-01T00:00:00.000Z',
};

describe('effectivePolicy', () => {
  it.each([
    ['a project value', { projectId: IDS.PA }, RPM, '500', 'project', IDS.PA],
    ['its department value, for a project without one', { projectId: IDS.PA2, departmentId: IDS.DA }, RPM, '1000', 'department', IDS.DA],
    ['the organization value, through an empty department', { projectId: IDS.PB }, RPM, '2000', 'organization', IDS.O1],
    ['the organization value, at the organization', {}, RPM, '2000', 'organization', IDS.O1],
    ['the plan value', { projectId: IDS.PA }, GPUS, '16', 'plan', 'plan-pro'],
    ['the global value', { projectId: IDS.PA }, RETENTION, '30', 'global', null],
    ['the key default where nothing is set', { projectId: IDS.PA }, REGION, 'uae-north', 'default', null],
  ] as const)('gives %s', (_what, target, policyKey, value, level, sourceId) => {
    expect(effectivePolicy(SNAPSHOT, target, policyKey)).toMatchObject({ key: policyKey, value, level, sourceId, application: 'per_project', pool: null });
  });

  it("takes a known project's department from the snapshot, since a project never moves", () => {
    expect(effectivePolicy(SNAPSHOT, { projectId: IDS.PA, departmentId: IDS.DB }, BUDGET)).toMatchObject({ value: '1000.25', level: 'department' });
  });

  it('names the pool of a pooled value: the node that set it, or the organization for inherited templates', () => {
    expect(effectivePolicy(SNAPSHOT, { projectId: IDS.PA }, BUDGET)).toEqual({
      key: BUDGET,
      value: '1000.25',
      level: 'department',
      sourceId: IDS.DA,
      application: 'pooled',
      pool: { level: 'department', id: IDS.DA },
    });
    expect(effectivePolicy(SNAPSHOT, { projectId: IDS.PB }, BUDGET).pool).toEqual({ level: 'organization', id: IDS.O1 });
    const bare = { ...SNAPSHOT, layers: { ...SNAPSHOT.layers, organization: {}, departments: {} } };
    expect(effectivePolicy(bare, { projectId: IDS.PA }, BUDGET)).toMatchObject({ level: 'default', pool: { level: 'organization', id: IDS.O1 } });
  });

  it('throws POLICY_KEY_UNKNOWN for a key nobody registered, inherited names included', () => {
    expect(() => effectivePolicy(SNAPSHOT, {}, 'gpuaas.nothing.here')).toThrow(expect.objectContaining({ code: 'POLICY_KEY_UNKNOWN' }));
    expect(() => effectivePolicy(SNAPSHOT, {}, 'constructor')).toThrow(expect.objectContaining({ code: 'POLICY_KEY_UNKNOWN' }));
  });
});

describe('policyLimits', () => {
  it('lists every pool a project spends from: its department value and the organization value', () => {
    expect(policyLimits(SNAPSHOT, { projectId: IDS.PA }, BUDGET)).toEqual([
      { value: '1000.25', level: 'department', sourceId: IDS.DA, pool: { level: 'department', id: IDS.DA } },
      { value: '5000.50', level: 'organization', sourceId: IDS.O1, pool: { level: 'organization', id: IDS.O1 } },
    ]);
  });

  it('adds a value set on the project itself, first', () => {
    const withProject = {
      ...SNAPSHOT,
      layers: { ...SNAPSHOT.layers, projects: { ...SNAPSHOT.layers.projects, [IDS.PA]: { departmentId: IDS.DA, values: { [BUDGET]: '300' } } } },
    };
    expect(policyLimits(withProject, { projectId: IDS.PA }, BUDGET).map((limit) => [limit.pool.level, limit.value])).toEqual([
      ['project', '300'],
      ['department', '1000.25'],
      ['organization', '5000.50'],
    ]);
  });

  it('takes the department of a project the snapshot does not know from the target', () => {
    expect(policyLimits(SNAPSHOT, { projectId: IDS.PA2, departmentId: IDS.DA }, BUDGET).map((limit) => limit.pool)).toEqual([
      { level: 'department', id: IDS.DA },
      { level: 'organization', id: IDS.O1 },
    ]);
  });

  it('counts plan, global and default values as the organization pool, most specific first', () => {
    const onPlan = { ...SNAPSHOT, layers: { ...SNAPSHOT.layers, organization: {}, departments: {}, plan: { [BUDGET]: '700' }, global: { [BUDGET]: '900' } } };
    expect(policyLimits(onPlan, { projectId: IDS.PB }, BUDGET)).toEqual([
      { value: '700', level: 'plan', sourceId: 'plan-pro', pool: { level: 'organization', id: IDS.O1 } },
    ]);
    const onGlobal = { ...onPlan, layers: { ...onPlan.layers, plan: {} } };
    expect(policyLimits(onGlobal, { projectId: IDS.PB }, BUDGET)).toEqual([
      { value: '900', level: 'global', sourceId: null, pool: { level: 'organization', id: IDS.O1 } },
    ]);
    const bare = { ...onPlan, layers: { ...onPlan.layers, plan: {}, global: {} } };
    expect(policyLimits(bare, { projectId: IDS.PB }, BUDGET)).toEqual([
      { value: '100000000', level: 'default', sourceId: null, pool: { level: 'organization', id: IDS.O1 } },
    ]);
  });

  it('names no pool in the global snapshot, and refuses unknown and per-project keys', () => {
    expect(policyLimits({ ...SNAPSHOT, organizationId: null }, {}, BUDGET)).toEqual([]);
    expect(() => policyLimits(SNAPSHOT, {}, 'billing.nothing.here')).toThrow(expect.objectContaining({ code: 'POLICY_KEY_UNKNOWN' }));
    expect(() => policyLimits(SNAPSHOT, {}, RPM)).toThrow(RangeError);
  });
});

const write = (level: PolicyWrite['level'], targetId: string | null, policyKey: string, value: unknown, departmentId?: string): PolicyWrite => ({
  level,
  targetId,
  key: policyKey,
  value,
  ...(departmentId ? { departmentId } : {}),
});

describe('checkPolicyWrite: ceilings', () => {
  it('refuses a project passing its department ceiling and allows meeting it', () => {
    expect(checkPolicyWrite(SNAPSHOT, write('project', IDS.PA, RPM, '1001'))).toEqual({
      code: 'POLICY_BOUND_VIOLATION',
      message: `${RPM} may not be above 1000, set at department level`,
      bound: { level: 'department', id: IDS.DA, value: '1000' },
    });
    expect(checkPolicyWrite(SNAPSHOT, write('project', IDS.PA, RPM, '1000'))).toBeNull();
  });

  it("bounds a project the snapshot does not know yet by the department it names", () => {
    expect(checkPolicyWrite(SNAPSHOT, write('project', IDS.PA2, RPM, '1500', IDS.DA))).toMatchObject({ bound: { level: 'department', value: '1000' } });
  });

  it.each([
    ['a department, by the organization', write('department', IDS.DB, RPM, '2500'), { level: 'organization', id: IDS.O1, value: '2000' }],
    ['an organization, by its plan', write('organization', IDS.O1, RPM, '4000'), { level: 'plan', id: 'plan-pro', value: '3000' }],
    ['a plan, by global', write('plan', 'plan-pro', RPM, '6000'), { level: 'global', id: null, value: '5000' }],
  ] as const)('refuses %s ceiling being passed', (_what, attempt, bound) => {
    expect(checkPolicyWrite(SNAPSHOT, attempt)).toMatchObject({ code: 'POLICY_BOUND_VIOLATION', bound });
  });

  it.each([
    ['global, below the plan', write('global', null, RPM, '2500'), { level: 'plan', id: 'plan-pro', value: '3000' }],
    ['a plan, below the organization', write('plan', 'plan-pro', RPM, '1500'), { level: 'organization', id: IDS.O1, value: '2000' }],
    ['an organization, below a department', write('organization', IDS.O1, RPM, '800'), { level: 'department', id: IDS.DA, value: '1000' }],
    ['a department, below one of its projects', write('department', IDS.DA, RPM, '400'), { level: 'project', id: IDS.PA, value: '500' }],
  ] as const)('refuses %s that would leave a lower value past the new ceiling', (_what, attempt, bound) => {
    expect(checkPolicyWrite(SNAPSHOT, attempt)).toMatchObject({ code: 'POLICY_BOUND_VIOLATION', bound });
  });

  it("ignores another department's projects when lowering a department", () => {
    expect(checkPolicyWrite(SNAPSHOT, write('department', IDS.DB, RPM, '400'))).toBeNull();
  });

  it('lets a write within every bound through, at each of the five levels', () => {
    expect(checkPolicyWrite(SNAPSHOT, write('global', null, RPM, '4000'))).toBeNull();
    expect(checkPolicyWrite(SNAPSHOT, write('plan', 'plan-pro', RPM, '2500'))).toBeNull();
    expect(checkPolicyWrite(SNAPSHOT, write('organization', IDS.O1, RPM, '1000'))).toBeNull();
    expect(checkPolicyWrite(SNAPSHOT, write('department', IDS.DA, RPM, '500'))).toBeNull();
    expect(checkPolicyWrite(SNAPSHOT, write('project', IDS.PB, RPM, '2000'))).toBeNull();
  });

  it('does not treat the key default as a bound', () => {
    expect(checkPolicyWrite(SNAPSHOT, write('organization', IDS.O1, RPM, '2000'))).toBeNull();
    expect(checkPolicyWrite(SNAPSHOT, write('project', IDS.PA, GPUS, '12'))).toBeNull();
    const unset = { ...SNAPSHOT, layers: { ...SNAPSHOT.layers, global: {}, plan: {}, organization: {} } };
    expect(checkPolicyWrite(unset, write('organization', IDS.O1, RPM, '99999'))).toBeNull();
  });

  it('compares decimals exactly', () => {
    expect(checkPolicyWrite(SNAPSHOT, write('department', IDS.DA, BUDGET, '5000.51'))).toMatchObject({ bound: { level: 'organization', value: '5000.50' } });
    expect(checkPolicyWrite(SNAPSHOT, write('department', IDS.DA, BUDGET, '5000.5'))).toBeNull();
    expect(checkPolicyWrite(SNAPSHOT, write('department', IDS.DA, BUDGET, '5000.5000000000000000001'))).toMatchObject({ code: 'POLICY_BOUND_VIOLATION' });
  });

  it('compares durations in seconds', () => {
    expect(checkPolicyWrite(SNAPSHOT, write('project', IDS.PA, DURATION, 'PT168H'))).toBeNull();
    expect(checkPolicyWrite(SNAPSHOT, write('project', IDS.PA, DURATION, 'P1W'))).toBeNull();
    expect(checkPolicyWrite(SNAPSHOT, write('project', IDS.PA, DURATION, 'P6DT24H1S'))).toMatchObject({ bound: { value: 'P7D' } });
  });

  it('orders booleans false below true, so an organization that turns a feature off binds its projects', () => {
    expect(checkPolicyWrite(SNAPSHOT, write('project', IDS.PA, BETA, true))).toMatchObject({ bound: { level: 'organization', value: false } });
    expect(checkPolicyWrite(SNAPSHOT, write('project', IDS.PA, BETA, false))).toBeNull();
  });
});

describe('checkPolicyWrite: floors', () => {
  it('refuses a project going below a floor set above it', () => {
    expect(checkPolicyWrite(SNAPSHOT, write('project', IDS.PA, RETENTION, '20'))).toEqual({
      code: 'POLICY_BOUND_VIOLATION',
      message: `${RETENTION} may not be below 30, set at global level`,
      bound: { level: 'global', id: null, value: '30' },
    });
    expect(checkPolicyWrite(SNAPSHOT, write('project', IDS.PA, RETENTION, '30'))).toBeNull();
  });

  it('refuses raising a floor above a value already set beneath it', () => {
    expect(checkPolicyWrite(SNAPSHOT, write('organization', IDS.O1, RETENTION, '100'))).toMatchObject({
      bound: { level: 'project', id: IDS.PB, value: '90' },
    });
    expect(checkPolicyWrite(SNAPSHOT, write('organization', IDS.O1, RETENTION, '90'))).toBeNull();
  });
});

describe('checkPolicyWrite: values and keys', () => {
  it.each([
    [RPM, 1200],
    [RPM, '12.5'],
    [RPM, '012'],
    [BUDGET, '1e6'],
    [BUDGET, '.5'],
    [BETA, 'true'],
    [DURATION, 'P1M'],
    [DURATION, 'P1Y'],
    [DURATION, 'P'],
    [DURATION, 'PT'],
    [DURATION, '30 days'],
    [REGION, 'mars-north'],
  ])('refuses %s = %p as POLICY_VALUE_INVALID', (policyKey, value) => {
    expect(checkPolicyWrite(SNAPSHOT, write('organization', IDS.O1, policyKey, value))).toMatchObject({ code: 'POLICY_VALUE_INVALID' });
  });

  it('accepts any valid value of a key without direction', () => {
    expect(checkPolicyWrite(SNAPSHOT, write('project', IDS.PA, REGION, 'uae-central'))).toBeNull();
  });

  it('refuses an unknown or retired key as POLICY_KEY_UNKNOWN', () => {
    expect(checkPolicyWrite(SNAPSHOT, write('organization', IDS.O1, 'gpuaas.nothing.here', '1'))).toMatchObject({ code: 'POLICY_KEY_UNKNOWN' });
    expect(checkPolicyWrite(SNAPSHOT, write('organization', IDS.O1, OLD, true))).toMatchObject({ code: 'POLICY_KEY_UNKNOWN' });
  });
});
