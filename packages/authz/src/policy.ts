import { AppError } from '@aifactory/errors';
import { POLICY_LEVELS, type PolicyKeyDef, type PolicyLevel, type PolicySnapshot, type PolicyValue, type PolicyValues } from './model.js';
import { compareExact, parsePolicyValue } from './policy-values.js';

/** Where in one organization a value is looked up: a project, a department, or the organization itself. */
export interface PolicyTarget {
  departmentId?: string | null;
  projectId?: string | null;
}

export type PoolLevel = 'organization' | 'department' | 'project';

export interface EffectivePolicy {
  key: string;
  value: PolicyValue;
  /** Where the value was set; `default` when nothing was, and the key's default applies. */
  level: PolicyLevel | 'default';
  /** The project, department, organization or plan id that set it; null for global and default. */
  sourceId: string | null;
  application: PolicyKeyDef['application'];
  /** For a pooled key, the node whose members share the one budget; null for per-project keys. */
  pool: { level: PoolLevel; id: string } | null;
}

/** A value set somewhere, with the node that set it. */
interface SetValue {
  level: PolicyLevel;
  id: string | null;
  value: PolicyValue;
}

/**
 * The value that applies at the target: the most specific one set, project
 * over department over organization over plan over global, else the key's
 * default. A pooled value is shared by everything under the node that set
 * it; a plan, global or default value is a template every organization gets
 * its own copy of, so its pool is the organization.
 */
export function effectivePolicy(snapshot: PolicySnapshot, target: PolicyTarget, key: string): EffectivePolicy {
  const def = keyDef(snapshot, key);
  if (def === undefined) throw new AppError('POLICY_KEY_UNKNOWN', `Unknown policy key ${key}`, { details: { key } });
  const found = definedValues(pathOf(snapshot, target), key)[0];
  return {
    key,
    value: found?.value ?? def.default,
    level: found?.level ?? 'default',
    sourceId: found?.id ?? null,
    application: def.application,
    pool: def.application === 'pooled' ? poolOf(snapshot, found) : null,
  };
}

/** One limit a pooled key puts on a target: its value and the pool that shares it. */
export interface PolicyLimit {
  value: PolicyValue;
  /** Where the value was set; `default` when nothing was, and the key's default applies. */
  level: PolicyLevel | 'default';
  /** The project, department, organization or plan id that set it; null for global and default. */
  sourceId: string | null;
  /** Everything under this node spends from the one limit. */
  pool: { level: PoolLevel; id: string };
}

/**
 * Every limit a pooled key puts on the target, most specific first: the
 * value set on its project, the value set on its department, and the
 * organization's own (set on the organization, else its plan's, global's or
 * the key's default, a template every organization gets its own copy of).
 * `effectivePolicy` answers the one value that applies; a budget must also
 * hold against each wider pool the target spends from, so billing checks
 * them all. The global snapshot (no organization) has no pools.
 */
export function policyLimits(snapshot: PolicySnapshot, target: PolicyTarget, key: string): PolicyLimit[] {
  const def = keyDef(snapshot, key);
  if (def === undefined) throw new AppError('POLICY_KEY_UNKNOWN', `Unknown policy key ${key}`, { details: { key } });
  if (def.application !== 'pooled') throw new RangeError(`${key} is set per project, not pooled`);
  if (snapshot.organizationId === null) return [];
  const path = pathOf(snapshot, target);
  const limits: PolicyLimit[] = [];
  for (const layer of path) {
    if (layer.level !== 'project' && layer.level !== 'department') continue;
    const value = ownEntry(layer.values, key);
    if (value !== undefined && layer.id !== null) limits.push({ value, level: layer.level, sourceId: layer.id, pool: { level: layer.level, id: layer.id } });
  }
  const organization = definedValues(path.filter((layer) => depth(layer.level) <= depth('organization')), key)[0];
  limits.push({
    value: organization?.value ?? def.default,
    level: organization?.level ?? 'default',
    sourceId: organization?.id ?? null,
    pool: { level: 'organization', id: snapshot.organizationId },
  });
  return limits;
}

export interface PolicyWrite {
  level: PolicyLevel;
  /** The project, department, organization or plan written; null for global. */
  targetId: string | null;
  /** A project's department, where the snapshot does not yet know the project. */
  departmentId?: string | null;
  key: string;
  value: unknown;
}

export interface PolicyViolation {
  code: 'POLICY_BOUND_VIOLATION' | 'POLICY_VALUE_INVALID' | 'POLICY_KEY_UNKNOWN';
  message: string;
  /** The value that the write would break, and where it is set. */
  bound?: { level: PolicyLevel; id: string | null; value: PolicyValue };
}

/**
 * Whether a value may be set (seed 002, policy hierarchy). It must fit the
 * key's type. For a `ceiling` key every value set above the target caps it,
 * and it must not drop below a value already set beneath it, which would then
 * exceed its new ceiling; `floor` mirrors that; `none` has no bounds. A key
 * default bounds nothing: it only fills in where no level spoke. Only the
 * values in this snapshot (one organization) are checked: IAM checks a
 * global or plan write against every organization's snapshot.
 */
export function checkPolicyWrite(snapshot: PolicySnapshot, write: PolicyWrite): PolicyViolation | null {
  const def = keyDef(snapshot, write.key);
  if (def === undefined || def.lifecycle === 'retired') {
    return { code: 'POLICY_KEY_UNKNOWN', message: `Unknown policy key ${write.key}` };
  }
  const parsed = parsePolicyValue(def, write.value);
  if (!parsed.ok) return { code: 'POLICY_VALUE_INVALID', message: `${write.key} takes ${parsed.problem}` };
  if (def.direction === 'none') return null;
  const sign = def.direction === 'ceiling' ? 1 : -1;
  const word = def.direction === 'ceiling' ? 'above' : 'below';
  const above = pathOf(snapshot, writtenNode(write)).filter((layer) => depth(layer.level) < depth(write.level));
  for (const bound of definedValues(above, write.key)) {
    const other = parsePolicyValue(def, bound.value);
    // A stored value was checked when it was written; one that no longer parses bounds nothing.
    if (other.ok && sign * compareExact(parsed.exact, other.exact) > 0) {
      return violation(bound, `${write.key} may not be ${word} ${String(bound.value)}, set at ${bound.level} level`);
    }
  }
  for (const below of definedValues(layersBelow(snapshot, write), write.key)) {
    const other = parsePolicyValue(def, below.value);
    if (other.ok && sign * compareExact(other.exact, parsed.exact) > 0) {
      return violation(below, `${write.key} is ${String(below.value)} at ${below.level} level, which would be ${word} the new value`);
    }
  }
  return null;
}

function violation(bound: SetValue, message: string): PolicyViolation {
  return { code: 'POLICY_BOUND_VIOLATION', message, bound: { level: bound.level, id: bound.id, value: bound.value } };
}

interface Layer {
  level: PolicyLevel;
  id: string | null;
  values: PolicyValues;
}

const NONE: PolicyValues = {};

/**
 * Every layer on the path from the target up to global, most specific first.
 * A project's department comes from the snapshot when it knows the project
 * (a project never moves between departments), else from the target.
 */
function pathOf(snapshot: PolicySnapshot, target: PolicyTarget): Layer[] {
  const { layers } = snapshot;
  const projectId = target.projectId ?? null;
  const project = projectId === null ? undefined : ownEntry(layers.projects, projectId);
  const departmentId = project?.departmentId ?? target.departmentId ?? null;
  const path: Layer[] = [];
  if (projectId !== null) path.push({ level: 'project', id: projectId, values: project?.values ?? NONE });
  if (departmentId !== null) path.push({ level: 'department', id: departmentId, values: ownEntry(layers.departments, departmentId) ?? NONE });
  path.push(
    { level: 'organization', id: snapshot.organizationId, values: layers.organization },
    { level: 'plan', id: snapshot.planId, values: layers.plan },
    { level: 'global', id: null, values: layers.global },
  );
  return path;
}

function writtenNode(write: PolicyWrite): PolicyTarget {
  if (write.level === 'project') return { projectId: write.targetId, departmentId: write.departmentId ?? null };
  if (write.level === 'department') return { departmentId: write.targetId };
  return {};
}

/** Global is the widest level (0), project the narrowest. */
function depth(level: PolicyLevel): number {
  return POLICY_LEVELS.indexOf(level);
}

/** Every layer the write's node contains, whose values the new one must still bound. */
function layersBelow(snapshot: PolicySnapshot, write: PolicyWrite): Layer[] {
  const { layers } = snapshot;
  const departments = Object.entries(layers.departments).map(([id, values]): Layer => ({ level: 'department', id, values }));
  const projectsOf = (departmentId: string | null) =>
    Object.entries(layers.projects)
      .filter(([, entry]) => departmentId === null || entry.departmentId === departmentId)
      .map(([id, entry]): Layer => ({ level: 'project', id, values: entry.values }));
  const organization: Layer = { level: 'organization', id: snapshot.organizationId, values: layers.organization };
  switch (write.level) {
    case 'global':
      return [{ level: 'plan', id: snapshot.planId, values: layers.plan }, organization, ...departments, ...projectsOf(null)];
    case 'plan':
      return [organization, ...departments, ...projectsOf(null)];
    case 'organization':
      return [...departments, ...projectsOf(null)];
    case 'department':
      return write.targetId === null ? [] : projectsOf(write.targetId);
    case 'project':
      return [];
    default: {
      const unknown: never = write.level;
      throw new Error(`unknown policy level ${String(unknown)}`);
    }
  }
}

function definedValues(layers: readonly Layer[], key: string): SetValue[] {
  const found: SetValue[] = [];
  for (const layer of layers) {
    const value = ownEntry(layer.values, key);
    if (value !== undefined) found.push({ level: layer.level, id: layer.id, value });
  }
  return found;
}

function poolOf(snapshot: PolicySnapshot, found: SetValue | undefined): EffectivePolicy['pool'] {
  if (found !== undefined && found.id !== null && (found.level === 'project' || found.level === 'department')) {
    return { level: found.level, id: found.id };
  }
  return snapshot.organizationId === null ? null : { level: 'organization', id: snapshot.organizationId };
}

function keyDef(snapshot: PolicySnapshot, key: string): PolicyKeyDef | undefined {
  return ownEntry(snapshot.keys, key);
}

/** Keys and ids come from requests: never read an inherited property such as `constructor`. */
function ownEntry<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
