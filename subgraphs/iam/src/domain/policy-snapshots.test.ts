import type { PolicyKey, PolicyRows, PolicyValue } from '../data/policy.js';
import { buildPolicySnapshots } from './policy-snapshots.js';

const ORG = '11111111-1111-4111-8111-111111111111';
const DEPT = '22222222-2222-4222-8222-222222222222';
const PROJECT = '33333333-3333-4333-8333-333333333333';
const PLAN = '44444444-4444-4444-8444-444444444444';
const OTHER_PLAN = '55555555-5555-4555-8555-555555555555';
const KEY = 'gpuaas.gpus.max_per_project';

const key: PolicyKey = {
  key: KEY,
  type: 'integer',
  unit: 'GPUs',
  defaultValue: '8',
  direction: 'ceiling',
  application: 'per_project',
  // Postgres hands back NULL for keys that are not enums.
  enumValues: null as unknown as string[],
  description: 'GPUs one project may hold at once.',
  lifecycle: 'active',
  updatedAt: new Date(0),
};

function value(level: PolicyValue['level'], targetId: string, organizationId: string | null, v: string): PolicyValue {
  return { id: `${level}-${targetId}`, level, targetId, organizationId, key: KEY, value: v, setBy: null, updatedAt: new Date(0) };
}

describe('buildPolicySnapshots', () => {
  const rows: PolicyRows = {
    version: 7,
    keys: [key],
    organizations: [{ id: ORG, planId: PLAN }],
    values: [
      value('global', '00000000-0000-0000-0000-000000000000', null, '64'),
      value('plan', PLAN, null, '32'),
      value('plan', OTHER_PLAN, null, '4'),
      value('organization', ORG, ORG, '16'),
      value('department', DEPT, ORG, '12'),
      value('project', PROJECT, ORG, '10'),
    ],
    projectDepartments: new Map([[PROJECT, DEPT]]),
  };

  it('puts each value in its layer, with the organization on its own plan', () => {
    const set = buildPolicySnapshots(rows, '2026-01-01T00:00:00.000Z');
    const org = set.organizations.get(ORG);

    expect(org).toMatchObject({ version: 7, organizationId: ORG, planId: PLAN });
    expect(org?.layers).toEqual({
      global: { [KEY]: '64' },
      plan: { [KEY]: '32' },
      organization: { [KEY]: '16' },
      departments: { [DEPT]: { [KEY]: '12' } },
      projects: { [PROJECT]: { departmentId: DEPT, values: { [KEY]: '10' } } },
    });
    expect(org?.keys[KEY]).toMatchObject({ default: '8', enumValues: null });
  });

  it('keeps policy.global free of plan and organization values, and gives every plan its own snapshot', () => {
    const set = buildPolicySnapshots(rows, '2026-01-01T00:00:00.000Z');

    expect(set.global.layers).toEqual({ global: { [KEY]: '64' }, plan: {}, organization: {}, departments: {}, projects: {} });
    expect(set.plans.get(OTHER_PLAN)).toMatchObject({ organizationId: null, planId: OTHER_PLAN, layers: { plan: { [KEY]: '4' }, organization: {} } });
  });
});
