import { effectivePolicy, requireFreshPolicy, type PolicyTarget, type PolicyValue } from '@aifactory/authz';
import { AppError } from '@aifactory/errors';
import type { Counter, ServiceMetrics } from '@aifactory/telemetry';
import type { Caller } from './caller.js';

/**
 * Policy for IAM's own write paths, read like every other service reads it:
 * from the access read model, never from IAM's tables, so IAM enforces
 * exactly the values the rest of the platform sees. Seed 002: a write that
 * needs policy refuses when the snapshot is older than five minutes, and the
 * refusal is counted.
 */
export class FreshPolicy {
  private refusals: Counter<'operation'> | undefined;
  private refused = 0;

  /** The metrics registry exists once the subgraph has started; refusals before that are still counted here. */
  attachMetrics(metrics: ServiceMetrics): void {
    this.refusals = metrics.counter('aif_iam_policy_stale_refusals_total', 'IAM writes refused because the policy snapshot was too old.', [
      'operation',
    ]);
  }

  /** Refusals since start (tests, /metrics). */
  get refusalCount(): number {
    return this.refused;
  }

  /**
   * The effective value of `key` at `target` in the organization (null: the
   * platform-wide global snapshot). An organization whose snapshot has not
   * been published yet (created a moment ago) has no values of its own, so
   * the global snapshot answers for it.
   */
  value(caller: Caller, operation: string, organizationId: string | null, target: PolicyTarget, key: string): PolicyValue {
    const model = caller.accessModel;
    const onRefusal = () => {
      this.refused += 1;
      this.refusals?.inc({ operation });
    };
    requireFreshPolicy({ ageMs: model.ageMs(), onRefusal });
    const snapshot = (organizationId === null ? undefined : model.policy(organizationId)) ?? model.policy(null);
    if (snapshot === undefined) {
      onRefusal();
      throw new AppError('POLICY_SNAPSHOT_STALE', 'Policy is temporarily unavailable; retry shortly', { details: { organizationId } });
    }
    return effectivePolicy(snapshot, target, key).value;
  }
}
