import { policyKeyDefSchema, policyValueSchema, type PolicyKeyDef, type PolicySnapshot, type PolicyValue, type PolicyValues } from '@aifactory/authz';
import type { PolicyKey, PolicyRows } from '../data/policy.js';

/** The snapshots one read of the policy tables yields. */
export interface PolicySnapshotSet {
  /** `policy.global`: the keys and global values, for consumers outside any organization. */
  global: PolicySnapshot;
  /** `policy.org.<id>`: everything that can apply inside the organization. */
  organizations: Map<string, PolicySnapshot>;
  /**
   * A plan's values over the global ones, outside any organization: a global
   * write is checked against every plan, assigned or not.
   */
  plans: Map<string, PolicySnapshot>;
}

export function policyKeyDef(row: PolicyKey): PolicyKeyDef {
  return policyKeyDefSchema.parse({
    key: row.key,
    type: row.type,
    unit: row.unit,
    default: row.defaultValue,
    direction: row.direction,
    application: row.application,
    // Postgres stores NULL for keys that are not enums.
    enumValues: row.enumValues === null || row.enumValues.length === 0 ? null : row.enumValues,
    description: row.description,
    lifecycle: row.lifecycle,
  });
}

/** A stored value; every write checked its type, so anything else is a corrupt row. */
export function storedPolicyValue(json: unknown): PolicyValue {
  return policyValueSchema.parse(json);
}

function emptyLayers(global: PolicyValues): PolicySnapshot['layers'] {
  return { global, plan: {}, organization: {}, departments: {}, projects: {} };
}

/** Groups the rows by layer into the read model's snapshots (plan-iam.md, Read model). */
export function buildPolicySnapshots(rows: PolicyRows, publishedAt: string): PolicySnapshotSet {
  const keys: Record<string, PolicyKeyDef> = Object.fromEntries(rows.keys.map((row) => [row.key, policyKeyDef(row)]));
  const global: PolicyValues = {};
  const planValues = new Map<string, PolicyValues>();
  const organizationLayers = new Map<string, PolicySnapshot['layers']>();
  const layersOf = (organizationId: string): PolicySnapshot['layers'] => {
    let layers = organizationLayers.get(organizationId);
    if (layers === undefined) {
      layers = emptyLayers(global);
      organizationLayers.set(organizationId, layers);
    }
    return layers;
  };

  for (const row of rows.values) {
    const value = storedPolicyValue(row.value);
    switch (row.level) {
      case 'global':
        global[row.key] = value;
        break;
      case 'plan': {
        const values = planValues.get(row.targetId) ?? {};
        values[row.key] = value;
        planValues.set(row.targetId, values);
        break;
      }
      case 'organization':
        if (row.organizationId !== null) layersOf(row.organizationId).organization[row.key] = value;
        break;
      case 'department':
        if (row.organizationId !== null) {
          const departments = layersOf(row.organizationId).departments;
          departments[row.targetId] = { ...departments[row.targetId], [row.key]: value };
        }
        break;
      case 'project': {
        const departmentId = rows.projectDepartments.get(row.targetId);
        if (row.organizationId !== null && departmentId !== undefined) {
          const projects = layersOf(row.organizationId).projects;
          const entry = projects[row.targetId] ?? { departmentId, values: {} };
          entry.values[row.key] = value;
          projects[row.targetId] = entry;
        }
        break;
      }
      default: {
        const unknown: never = row.level;
        throw new RangeError(`unknown policy level ${String(unknown)}`);
      }
    }
  }

  const snapshot = (organizationId: string | null, planId: string | null, layers: PolicySnapshot['layers']): PolicySnapshot => ({
    version: rows.version,
    organizationId,
    planId,
    keys,
    layers,
    publishedAt,
  });
  const organizations = new Map(
    rows.organizations.map((organization) => {
      const layers = organizationLayers.get(organization.id) ?? emptyLayers(global);
      layers.plan = organization.planId === null ? {} : (planValues.get(organization.planId) ?? {});
      return [organization.id, snapshot(organization.id, organization.planId, layers)] as const;
    }),
  );
  const plans = new Map([...planValues].map(([planId, values]) => [planId, snapshot(null, planId, { ...emptyLayers(global), plan: values })]));
  return { global: snapshot(null, null, emptyLayers(global)), organizations, plans };
}
