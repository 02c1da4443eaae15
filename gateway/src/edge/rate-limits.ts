import type { Principal } from '@aifactory/service-auth';
import type { RateLimitsConfig } from '../config.js';
import type { RateLimitDecision, RateLimitRule } from './rate-limiter.js';

/**
 * Where limits come from. Today the gateway's config; once IAM holds policy
 * (hierarchical, per organization) it answers here instead, and nothing that
 * asks changes.
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
