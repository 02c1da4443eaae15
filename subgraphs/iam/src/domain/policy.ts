import { z } from 'zod';
import { policyChangedV1, type PolicyChangedPayload } from '@aifactory/contracts';
import { AppError, parseInput } from '@aifactory/errors';
import {
  checkPolicyWrite,
  effectivePolicy,
  parsePolicyValue,
  POLICY_APPLICATIONS,
  POLICY_DIRECTIONS,
  POLICY_LEVELS,
  POLICY_TYPES,
  type EffectivePolicy,
  type PolicyKeyDef,
  type PolicySnapshot,
  type PolicyValue,
} from '@aifactory/authz';
import type { OutboxEventInput } from '@aifactory/events';
import { actorOf, type Outbox } from '@aifactory/subgraph-kit';
import type { IamPrisma } from '../data/database.js';
import {
  GLOBAL_TARGET_ID,
  PolicyStore,
  type Plan,
  type PolicyLevel,
  type PolicyNode,
  type PolicyTransaction,
  type PolicyValue as PolicyValueRow,
} from '../data/policy.js';
import { pageOf, type KeysetPage, type Page } from '../data/registries-pages.js';
import { RegistryStore } from '../data/registries.js';
import { auditEvent, type AuditResource } from './audit.js';
import { buildPolicySnapshots, policyKeyDef, storedPolicyValue, type PolicySnapshotSet } from './policy-snapshots.js';
import { REGISTRY_MANAGE, registryChangeEvents, type AuthorizedCaller } from './registries.js';

/** Scopes that gate policy (registry/scopes.json). `plan:manage` is held by platform admins only: it gates global and plan values too. */
export const POLICY_READ = 'platform:policy:read';
export const POLICY_MANAGE = 'platform:policy:manage';
export const PLAN_MANAGE = 'platform:plan:manage';

const idSchema = z.uuid();
const keySchema = z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/, 'must be dot-separated lowercase words, such as gpuaas.gpus.max_per_project');
const valueSchema = z.union([z.string().max(200), z.boolean()]);
const levelSchema = z.enum(POLICY_LEVELS);

const keyInput = z.object({
  key: keySchema.max(200),
  type: z.enum(POLICY_TYPES),
  unit: z.string().trim().min(1).max(50).nullish(),
  default: valueSchema,
  direction: z.enum(POLICY_DIRECTIONS),
  application: z.enum(POLICY_APPLICATIONS),
  enumValues: z.array(z.string().min(1).max(100)).min(1).max(100).nullish(),
  description: z.string().trim().min(1).max(500),
});
const planInput = z.object({
  slug: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'must be 1-63 lowercase letters, digits or dashes'),
  name: z.string().trim().min(1).max(200),
});
const valueTargetInput = z.object({ level: levelSchema, targetId: idSchema.nullish(), key: keySchema.max(200) });
const effectiveTargetInput = z
  .object({ organizationId: idSchema.nullish(), departmentId: idSchema.nullish(), projectId: idSchema.nullish() })
  .refine((target) => [target.organizationId, target.departmentId, target.projectId].filter((id) => id != null).length === 1, {
    message: 'name exactly one of organizationId, departmentId and projectId',
  });

/** Where a value is set: a level and, below global, the plan or node it is set on. */
export interface PolicyValueTarget {
  level: PolicyLevel;
  targetId?: string | null;
  key: string;
}

/** A value set at one level, as the API shows it. */
export interface PolicySetting {
  level: PolicyLevel;
  /** Null at global level. */
  targetId: string | null;
  key: string;
  value: PolicyValue;
  setBy: string | null;
  updatedAt: Date;
}

/** One key's effective value at a node, with its definition. */
export interface EffectivePolicyEntry extends EffectivePolicy {
  definition: PolicyKeyDef;
}

export interface EffectivePolicyPage extends Page<EffectivePolicyEntry> {
  /** The policy snapshot version the values were computed from. */
  version: number;
  node: PolicyNode;
}

/** The node a write is on, resolved: a plan, or where in an organization. */
type ResolvedTarget =
  | { level: 'global'; targetId: null; node: null }
  | { level: 'plan'; targetId: string; node: null }
  | { level: 'organization' | 'department' | 'project'; targetId: string; node: PolicyNode };

function settingOf(row: PolicyValueRow): PolicySetting {
  return {
    level: row.level,
    targetId: row.level === 'global' ? null : row.targetId,
    key: row.key,
    value: storedPolicyValue(row.value),
    setBy: row.setBy,
    updatedAt: row.updatedAt,
  };
}

function notFound(what: string, id: string): AppError {
  return new AppError('NOT_FOUND', `${what} not found`, { details: { id } });
}

/**
 * Hierarchical policy (seed 002): keys with a type, direction and
 * application; values at global, plan, organization, department and project
 * level; plans assigned to organizations. Every write takes the one `policy`
 * version row first (UPDATE ... RETURNING holds its lock until commit), so
 * writes apply one at a time, each checks its bounds against everything
 * committed before it, and snapshot versions are gap-free and in commit
 * order. Each announces `platform.iam.policy.changed` at that version.
 */
export class PolicyService {
  private readonly store: PolicyStore;
  private readonly registries: RegistryStore;

  constructor(
    prisma: IamPrisma,
    private readonly outbox: Outbox,
  ) {
    this.store = new PolicyStore(prisma);
    this.registries = new RegistryStore(prisma);
  }

  /** `policy.global` and one `policy.org.<id>` per organization, all at one version. */
  async policySnapshots(): Promise<PolicySnapshot[]> {
    const set = buildPolicySnapshots(await this.store.rows({}), new Date().toISOString());
    return [set.global, ...set.organizations.values()];
  }

  /** One organization's snapshot, or `policy.global` for null. */
  async policySnapshot(organizationId: string | null): Promise<PolicySnapshot> {
    if (organizationId === null) return buildPolicySnapshots(await this.store.rows({ organizationId: null }), new Date().toISOString()).global;
    const set = buildPolicySnapshots(await this.store.rows({ organizationId }), new Date().toISOString());
    const snapshot = set.organizations.get(organizationId);
    if (snapshot === undefined) throw notFound('Organization', organizationId);
    return snapshot;
  }

  async policyKeys(caller: AuthorizedCaller, page: KeysetPage): Promise<Page<PolicyKeyDef>> {
    caller.access.requireHolds(POLICY_READ);
    const rows = await this.store.listKeys(page);
    return { ...rows, nodes: rows.nodes.map(policyKeyDef) };
  }

  async policyKey(caller: AuthorizedCaller, key: string): Promise<PolicyKeyDef | null> {
    caller.access.requireHolds(POLICY_READ);
    const row = await this.store.findKey(key);
    return row && policyKeyDef(row);
  }

  plans(caller: AuthorizedCaller, page: KeysetPage): Promise<Page<Plan>> {
    caller.access.requireHolds(POLICY_READ);
    return this.store.listPlans(page);
  }

  async plan(caller: AuthorizedCaller, id: string): Promise<Plan | null> {
    caller.access.requireHolds(POLICY_READ);
    return idSchema.safeParse(id).success ? this.store.findPlan(id) : null;
  }

  /** The values set at one level on one target; reading an organization's, department's or project's needs policy:read on it. */
  async valuesAt(caller: AuthorizedCaller, input: { level: PolicyLevel; targetId?: string | null }, page: KeysetPage): Promise<Page<PolicySetting>> {
    const valid = parseInput(z.object({ level: levelSchema, targetId: idSchema.nullish() }), input);
    const target = await this.resolveTarget(valid);
    if (target.node === null) caller.access.requireHolds(POLICY_READ);
    else caller.access.require(POLICY_READ, target.node);
    const rows = await this.store.listValues(target.level, target.targetId ?? GLOBAL_TARGET_ID, page);
    return { ...rows, nodes: rows.nodes.map(settingOf) };
  }

  /**
   * The effective value of each key (all keys, or those named) at an
   * organization, department or project: the most specific value set on the
   * path up to global, else the key's default, with the level and id it came
   * from and, for a pooled key, the node whose members share it.
   */
  async effectivePolicy(
    caller: AuthorizedCaller,
    input: { organizationId?: string | null; departmentId?: string | null; projectId?: string | null; keys?: readonly string[] | null },
    page: KeysetPage,
  ): Promise<EffectivePolicyPage> {
    const target = parseInput(effectiveTargetInput, input);
    const node = await this.resolveNode(target);
    caller.access.require(POLICY_READ, node);
    const snapshot = await this.policySnapshot(node.organizationId);
    const named = input.keys == null ? null : [...new Set(input.keys)];
    const unknown = named?.filter((key) => !Object.hasOwn(snapshot.keys, key)) ?? [];
    if (unknown.length > 0) throw new AppError('POLICY_KEY_UNKNOWN', `Unknown policy keys: ${unknown.join(', ')}`, { details: { keys: unknown } });
    const keys = (named ?? Object.keys(snapshot.keys).filter((key) => snapshot.keys[key]?.lifecycle !== 'retired'))
      .sort()
      .filter((key) => page.afterKey === null || key > page.afterKey)
      .slice(0, page.limit + 1);
    const entries = keys.map((key) => ({
      ...effectivePolicy(snapshot, { departmentId: node.departmentId, projectId: node.projectId }, key),
      definition: snapshot.keys[key] as PolicyKeyDef,
    }));
    return { ...pageOf(entries, page), version: snapshot.version, node };
  }

  /** Defines a new key (platform admins): a policy_keys registry change and a policy change, since every snapshot lists the keys. */
  async definePolicyKey(caller: AuthorizedCaller, input: z.input<typeof keyInput>): Promise<PolicyKeyDef> {
    caller.access.requireHolds(REGISTRY_MANAGE);
    const valid = parseInput(keyInput, input);
    if ((valid.type === 'enum') !== (valid.enumValues != null)) {
      throw new AppError('BAD_REQUEST_INVALID_INPUT', 'enumValues is required for enum keys and refused for others', { details: { key: valid.key } });
    }
    const definition: PolicyKeyDef = {
      key: valid.key,
      type: valid.type,
      unit: valid.unit ?? null,
      default: valid.default,
      direction: valid.direction,
      application: valid.application,
      enumValues: valid.enumValues ?? null,
      description: valid.description,
      lifecycle: 'active',
    };
    const parsed = parsePolicyValue(definition, valid.default);
    if (!parsed.ok) throw new AppError('POLICY_VALUE_INVALID', `default must be ${parsed.problem}`, { details: { key: valid.key } });
    return this.store.transaction(async (tx) => {
      const registryVersion = await this.registries.bumpVersion(tx, 'policy_keys');
      for (const event of registryChangeEvents(caller, { registry: 'policy_keys', version: registryVersion, entryId: valid.key, change: 'registered' }, { definition })) {
        await this.outbox.add(tx, event);
      }
      const version = await this.registries.bumpVersion(tx, 'policy');
      // The contract has no change kind for a new key: announce its default as the value now in force.
      await this.outbox.add(tx, policyChanged(caller, null, { version, change: 'key_defined', level: null, targetId: null, key: valid.key, value: valid.default }));
      const created = await this.store.insertKey(tx, {
        key: definition.key,
        type: definition.type,
        unit: definition.unit,
        defaultValue: definition.default,
        direction: definition.direction,
        application: definition.application,
        enumValues: definition.enumValues ?? [],
        description: definition.description,
      });
      if (created === null) throw new AppError('IAM_DUPLICATE', `${valid.key} is already defined`, { details: { registry: 'policy_keys', id: valid.key } });
      return policyKeyDef(created);
    });
  }

  async createPlan(caller: AuthorizedCaller, input: { slug: string; name: string }): Promise<Plan> {
    caller.access.requireHolds(PLAN_MANAGE);
    const valid = parseInput(planInput, input);
    return this.store.transaction(async (tx) => {
      const version = await this.registries.bumpVersion(tx, 'policy');
      const plan = await this.store.insertPlan(tx, valid);
      if (plan === null) throw new AppError('IAM_DUPLICATE', `A plan with slug ${valid.slug} exists`, { details: { slug: valid.slug } });
      const change: PolicyChangedPayload = { version, change: 'plan_defined', level: 'plan', targetId: plan.id, key: null, value: null };
      await this.writeEvents(tx, caller, change, 'iam.plan.change', PLAN_MANAGE, null, { planId: plan.id, slug: plan.slug, name: plan.name });
      return plan;
    });
  }

  /**
   * Puts an organization on a plan (or none). The plan's values then bound
   * the organization's own, so an assignment that would leave a value set in
   * the organization past one of the plan's is refused.
   */
  async assignPlan(caller: AuthorizedCaller, input: { organizationId: string; planId: string | null }): Promise<{ organizationId: string; planId: string | null }> {
    caller.access.requireHolds(PLAN_MANAGE);
    const valid = parseInput(z.object({ organizationId: idSchema, planId: idSchema.nullable() }), input);
    const current = await this.store.findOrganizationPlan(valid.organizationId);
    if (current === null) throw notFound('Organization', valid.organizationId);
    if (current.planId === valid.planId) return { organizationId: current.id, planId: current.planId };
    return this.store.transaction(async (tx) => {
      const version = await this.registries.bumpVersion(tx, 'policy');
      if (valid.planId !== null && (await this.store.findPlan(valid.planId, tx)) === null) throw notFound('Plan', valid.planId);
      const previous = await this.store.findOrganizationPlan(valid.organizationId, tx);
      await this.store.assignPlan(tx, valid.organizationId, valid.planId);
      const rows = await this.store.rows({ organizationId: valid.organizationId }, tx);
      const snapshot = buildPolicySnapshots(rows, new Date().toISOString()).organizations.get(valid.organizationId);
      if (snapshot === undefined) throw notFound('Organization', valid.organizationId);
      for (const [key, value] of Object.entries(snapshot.layers.plan)) {
        refuseViolation(checkPolicyWrite(snapshot, { level: 'plan', targetId: valid.planId, key, value }), 'plan', valid.planId, key);
      }
      const change: PolicyChangedPayload = {
        version,
        change: 'plan_assigned',
        level: 'organization',
        targetId: valid.organizationId,
        key: null,
        value: valid.planId,
      };
      const resource: AuditResource = { organizationId: valid.organizationId, type: 'organization', id: valid.organizationId };
      await this.writeEvents(tx, caller, change, 'iam.plan.change', PLAN_MANAGE, resource, { planId: valid.planId, previousPlanId: previous?.planId ?? null });
      return { organizationId: valid.organizationId, planId: valid.planId };
    });
  }

  /** `setPolicyValue` at plan level. */
  setPlanValue(caller: AuthorizedCaller, input: { planId: string; key: string; value: unknown }): Promise<PolicySetting> {
    return this.setPolicyValue(caller, { level: 'plan', targetId: input.planId, key: input.key, value: input.value });
  }

  /**
   * Sets a value at one level: global and plan values by platform admins,
   * an organization's, department's or project's by whoever holds
   * policy:manage there. Refused when the key is unknown
   * (POLICY_KEY_UNKNOWN), the value is not of its type (POLICY_VALUE_INVALID),
   * or it would pass a ceiling or floor set above it, or put a value set
   * below it past the new one (POLICY_BOUND_VIOLATION, naming the bound).
   */
  async setPolicyValue(caller: AuthorizedCaller, input: PolicyValueTarget & { value: unknown }): Promise<PolicySetting> {
    const valid = parseInput(valueTargetInput.extend({ value: z.unknown() }), input);
    const target = await this.authorizeWrite(caller, valid);
    const targetId = target.targetId ?? GLOBAL_TARGET_ID;
    const existing = await this.store.findValue(target.level, targetId, valid.key);
    if (existing !== null && existing.value === valid.value) return settingOf(existing);
    return this.store.transaction(async (tx) => {
      const version = await this.registries.bumpVersion(tx, 'policy');
      const value = await this.checkWrite(tx, target, valid.key, valid.value);
      const previous = await this.store.findValue(target.level, targetId, valid.key, tx);
      const row = await this.store.upsertValue(tx, {
        level: target.level,
        targetId,
        organizationId: target.node?.organizationId ?? null,
        key: valid.key,
        value,
        setBy: caller.principal.subject,
      });
      const change: PolicyChangedPayload = { version, change: 'value_set', level: target.level, targetId: target.targetId, key: valid.key, value };
      await this.writeChange(tx, caller, target, change, { previous: previous === null ? null : storedPolicyValue(previous.value) });
      return settingOf(row);
    });
  }

  /** Removes a value so the level above applies again; removing one never puts another past a bound. False when none was set. */
  async clearPolicyValue(caller: AuthorizedCaller, input: PolicyValueTarget): Promise<boolean> {
    const valid = parseInput(valueTargetInput, input);
    const target = await this.authorizeWrite(caller, valid);
    const targetId = target.targetId ?? GLOBAL_TARGET_ID;
    if ((await this.store.findKey(valid.key)) === null) throw new AppError('POLICY_KEY_UNKNOWN', `Unknown policy key ${valid.key}`, { details: { key: valid.key } });
    if ((await this.store.findValue(target.level, targetId, valid.key)) === null) return false;
    return this.store.transaction(async (tx) => {
      const version = await this.registries.bumpVersion(tx, 'policy');
      const removed = await this.store.deleteValue(tx, target.level, targetId, valid.key);
      if (removed === null) throw new AppError('RESOURCE_CONFLICT', 'The value was cleared meanwhile', { details: { key: valid.key } });
      const change: PolicyChangedPayload = { version, change: 'value_cleared', level: target.level, targetId: target.targetId, key: valid.key, value: null };
      await this.writeChange(tx, caller, target, change, { previous: storedPolicyValue(removed.value) });
      return true;
    });
  }

  /**
   * The value checked against every snapshot the write can affect: its own
   * organization's, or for a plan every organization on it, or for global
   * every plan and every organization with a value of the key.
   */
  private async checkWrite(tx: PolicyTransaction, target: ResolvedTarget, key: string, value: unknown): Promise<PolicyValue> {
    const stored = valueSchema.safeParse(value);
    if (!stored.success) throw new AppError('POLICY_VALUE_INVALID', `${key} takes a string of at most 200 characters or a boolean`, { details: { key } });
    const organizationId = target.node?.organizationId;
    const rows = await this.store.rows(organizationId === undefined ? { key } : { organizationId, key }, tx);
    const set = buildPolicySnapshots(rows, new Date().toISOString());
    const write = { level: target.level, targetId: target.targetId, departmentId: target.node?.departmentId ?? null, key, value };
    for (const snapshot of affectedSnapshots(set, target, rows.values)) refuseViolation(checkPolicyWrite(snapshot, write), target.level, target.targetId, key);
    return stored.data;
  }

  private async authorizeWrite(caller: AuthorizedCaller, input: { level: PolicyLevel; targetId?: string | null }): Promise<ResolvedTarget> {
    if (input.level === 'global' || input.level === 'plan') caller.access.requireHolds(PLAN_MANAGE);
    const target = await this.resolveTarget(input);
    if (target.node !== null) caller.access.require(POLICY_MANAGE, target.node);
    return target;
  }

  private async resolveTarget(input: { level: PolicyLevel; targetId?: string | null }): Promise<ResolvedTarget> {
    const { level } = input;
    const targetId = input.targetId ?? null;
    if (level === 'global') {
      if (targetId !== null) throw new AppError('BAD_REQUEST_INVALID_INPUT', 'targetId must be null at global level');
      return { level, targetId: null, node: null };
    }
    if (targetId === null) throw new AppError('BAD_REQUEST_INVALID_INPUT', `targetId is required at ${level} level`);
    if (level === 'plan') {
      if ((await this.store.findPlan(targetId)) === null) throw notFound('Plan', targetId);
      return { level, targetId, node: null };
    }
    const node = await this.resolveNode(
      level === 'organization' ? { organizationId: targetId } : level === 'department' ? { departmentId: targetId } : { projectId: targetId },
    );
    return { level, targetId, node };
  }

  private async resolveNode(target: { organizationId?: string | null; departmentId?: string | null; projectId?: string | null }): Promise<PolicyNode> {
    if (target.projectId != null) return (await this.store.projectNode(target.projectId)) ?? Promise.reject(notFound('Project', target.projectId));
    if (target.departmentId != null) return (await this.store.departmentNode(target.departmentId)) ?? Promise.reject(notFound('Department', target.departmentId));
    if (target.organizationId != null) return (await this.store.organizationNode(target.organizationId)) ?? Promise.reject(notFound('Organization', target.organizationId));
    throw new AppError('BAD_REQUEST_INVALID_INPUT', 'name an organization, department or project');
  }

  private writeChange(tx: PolicyTransaction, caller: AuthorizedCaller, target: ResolvedTarget, change: PolicyChangedPayload, details: Record<string, unknown>): Promise<void> {
    const resource: AuditResource | null =
      target.node === null ? null : { ...target.node, type: target.level, id: target.targetId };
    const onPlan = target.level === 'plan';
    return this.writeEvents(tx, caller, change, onPlan ? 'iam.plan.change' : 'iam.policy.change', target.node === null ? PLAN_MANAGE : POLICY_MANAGE, resource, details);
  }

  private async writeEvents(
    tx: PolicyTransaction,
    caller: AuthorizedCaller,
    change: PolicyChangedPayload,
    action: 'iam.policy.change' | 'iam.plan.change',
    scope: string,
    resource: AuditResource | null,
    details: Record<string, unknown>,
  ): Promise<void> {
    await this.outbox.add(tx, policyChanged(caller, resource, change));
    await this.outbox.add(
      tx,
      auditEvent({
        action,
        outcome: 'succeeded',
        caller: { actor: actorOf(caller.principal), correlationId: caller.correlationId },
        scope,
        resource,
        details: { ...change, ...details },
      }),
    );
  }
}

/** `platform.iam.policy.changed`: aggregate `policy/global`, whose version is the policy snapshot version (gap-free). */
function policyChanged(caller: AuthorizedCaller, node: Partial<PolicyNode> | null, payload: PolicyChangedPayload): OutboxEventInput {
  return {
    type: policyChangedV1.type,
    version: policyChangedV1.version,
    aggregateId: 'global',
    aggregateVersion: payload.version,
    actor: actorOf(caller.principal),
    correlationId: caller.correlationId,
    organizationId: node?.organizationId ?? null,
    departmentId: node?.departmentId ?? null,
    projectId: node?.projectId ?? null,
    registryVersions: { policy: payload.version },
    payload,
  };
}

/** The snapshots whose values a write at this target can bound or be bounded by. */
function affectedSnapshots(set: PolicySnapshotSet, target: ResolvedTarget, values: readonly PolicyValueRow[]): PolicySnapshot[] {
  const organizationsWithValues = new Set(values.map((row) => row.organizationId).filter((id): id is string => id !== null));
  const inOrganizationsWithValues = [...set.organizations.values()].filter((snapshot) => organizationsWithValues.has(snapshot.organizationId ?? ''));
  switch (target.level) {
    case 'global':
      return [set.global, ...set.plans.values(), ...inOrganizationsWithValues];
    case 'plan': {
      const own = set.plans.get(target.targetId) ?? { ...set.global, planId: target.targetId };
      return [own, ...inOrganizationsWithValues.filter((snapshot) => snapshot.planId === target.targetId)];
    }
    case 'organization':
    case 'department':
    case 'project': {
      const own = set.organizations.get(target.node.organizationId);
      if (own === undefined) throw notFound('Organization', target.node.organizationId);
      return [own];
    }
    default: {
      const unknown: never = target;
      throw new RangeError(`unknown policy target ${JSON.stringify(unknown)}`);
    }
  }
}

function refuseViolation(violation: ReturnType<typeof checkPolicyWrite>, level: PolicyLevel, targetId: string | null, key: string): void {
  if (violation === null) return;
  throw new AppError(violation.code, violation.message, { details: { key, level, targetId, ...(violation.bound === undefined ? {} : { bound: violation.bound }) } });
}
