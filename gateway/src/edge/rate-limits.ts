import { effectivePolicy, type PolicySnapshot } from '@aifactory/authz';
import type { Principal } from '@aifactory/service-auth';
import type { RateLimitsConfig } from '../config.js';
import type { RateLimitDecision, RateLimitRule } from './rate-limiter.js';

/**
 * Where limits come from: the per-principal limit from IAM's policy keys,
 * the rest from the gateway's config; nothing that asks knows which.
 */
export interface RateLimitPolicy {
  /** Every GraphQL request and REST call of a principal. */
  principalRule(principal: Principal): RateLimitRule;
  /** An extra rule for one operation name, if it has one. */
  operationRule(principal: Principal, operationName: string): RateLimitRule | undefined;
  /** An extra rule for one `/api/<subgraph>` route family, if it has one. */
  routeRule(principal: Principal, route: string): RateLimitRule | undefined;
  /** Per provider and source address. */
  webhookRule(provider: string): RateLimitRule;
}

export function configuredRateLimitPolicy(config: RateLimitsConfig): RateLimitPolicy {
  return {
    principalRule: () => config.default,
    operationRule: (_principal, operationName) => (Object.hasOwn(config.operations, operationName) ? config.operations[operationName] : undefined),
    routeRule: (_principal, route) => (Object.hasOwn(config.routes, route) ? config.routes[route] : undefined),
    webhookRule: () => config.webhooks,
  };
}

/** The global policy key that sets every principal's default request budget (issue 14, Policy and quotas). */
export const REQUESTS_PER_MINUTE_KEY = 'platform.gateway.requests_per_minute';

/**
 * The per-principal limit comes from `platform.gateway.requests_per_minute`
 * in IAM's global policy snapshot (its global value, else the key's default);
 * the configured default serves until a snapshot exists or while the key is
 * missing or unreadable. Operation, route and webhook rules stay config.
 */
export function policyRateLimitPolicy(config: RateLimitsConfig, globalPolicy: () => PolicySnapshot | undefined): RateLimitPolicy {
  const configured = configuredRateLimitPolicy(config);
  let seen: PolicySnapshot | undefined;
  let rule: RateLimitRule = config.default;
  return {
    ...configured,
    principalRule: () => {
      const snapshot = globalPolicy();
      // Snapshots are replaced whole, so the rule is worked out once per snapshot.
      if (snapshot !== seen) {
        seen = snapshot;
        const perMinute = snapshot === undefined ? undefined : requestsPerMinute(snapshot);
        rule = perMinute === undefined ? config.default : { limit: perMinute, windowSeconds: 60 };
      }
      return rule;
    },
  };
}

function requestsPerMinute(snapshot: PolicySnapshot): number | undefined {
  if (!Object.hasOwn(snapshot.keys, REQUESTS_PER_MINUTE_KEY)) return undefined;
  const { value } = effectivePolicy(snapshot, {}, REQUESTS_PER_MINUTE_KEY);
  return typeof value === 'string' && /^\d{1,9}$/.test(value) ? Number(value) : undefined;
}

/** An API key is its own subject, so a program and the person who made its key are limited apart. */
export function rateLimitSubject(principal: Principal): string {
  return principal.apiKeyId ? `key:${principal.apiKeyId}` : `${principal.type}:${principal.subject}`;
}

/**
 * Of several decisions for one request, the one the client must see: a
 * refusal if any refused (the longest wait), otherwise the tightest budget.
 */
export function strictest(decisions: RateLimitDecision[]): RateLimitDecision {
  let chosen = decisions[0];
  if (!chosen) throw new Error('strictest() needs at least one decision');
  for (const decision of decisions.slice(1)) {
    const chosenLimited = chosen.outcome === 'limited';
    const limited = decision.outcome === 'limited';
    if (limited && (!chosenLimited || decision.retryAfterSeconds > chosen.retryAfterSeconds)) chosen = decision;
    else if (!limited && !chosenLimited && decision.remaining < chosen.remaining) chosen = decision;
  }
  return chosen;
}
