import { AppError } from '@aifactory/errors';
import { z } from 'zod';

export const PLATFORM_ROLES = ['platform_admin', 'internal_developer'] as const;
export type PlatformRole = (typeof PLATFORM_ROLES)[number];

/**
 * A role held on one node of the hierarchy. `org` and `dept` name the
 * node's organization and department (null above department level), so a
 * subgraph decides whether a grant covers a resource without asking IAM.
 */
export const grantSchema = z.object({
  level: z.enum(['organization', 'department', 'project']),
  id: z.string().min(1),
  role: z.string().min(1),
  org: z.string().min(1).optional(),
  dept: z.string().min(1).nullable().optional(),
});
export type Grant = z.infer<typeof grantSchema>;

export const PRINCIPAL_TYPES = ['user', 'service_account', 'service'] as const;

/**
 * The party a platform service acts for (RFC 8693: the token's `sub` when an
 * `act` claim names the acting service). It is attribution, never authority:
 * a service's token is judged by the service's own scopes.
 */
export const onBehalfOfSchema = z.object({
  type: z.enum(PRINCIPAL_TYPES),
  subject: z.string().min(1),
  apiKeyId: z.string().optional(),
  projectId: z.string().optional(),
  organizationId: z.string().optional(),
  departmentId: z.string().optional(),
});
export type OnBehalfOf = z.infer<typeof onBehalfOfSchema>;

/**
 * Who is calling, as the gateway established it (ARCHITECTURE.md, Decisions:
 * Principal). Subgraphs trust it only inside a verified internal JWT.
 */
export const principalSchema = z.object({
  type: z.enum(PRINCIPAL_TYPES),
  /** Stable id of the actor: the identity provider's issuer and subject for users. */
  subject: z.string().min(1),
  email: z.string().optional(),
  name: z.string().optional(),
  platformRoles: z.array(z.enum(PLATFORM_ROLES)),
  grants: z.array(grantSchema),
  apiKeyId: z.string().optional(),
  /** An API key's service account lives in one project; these name it and its department and organization. */
  projectId: z.string().optional(),
  organizationId: z.string().optional(),
  departmentId: z.string().optional(),
  scopes: z.array(z.string()).optional(),
  registryVersion: z.number().int().nonnegative().optional(),
  /**
   * Set only for a service's own token (type `service`) that acts for
   * someone: who that is. `subject` stays the calling service.
   */
  onBehalfOf: onBehalfOfSchema.optional(),
  /**
   * The services that acted, the calling one first and then each earlier
   * one (RFC 8693 `act`, nested claims flattened). Only with `onBehalfOf`.
   */
  actorChain: z.array(z.string().min(1)).optional(),
});
export type Principal = z.infer<typeof principalSchema>;

export function hasPlatformRole(principal: Principal, role: PlatformRole): boolean {
  return principal.platformRoles.includes(role);
}

/**
 * The coarse gate until IAM's role catalogue exists: fails closed for anyone
 * without the platform role.
 */
export function requirePlatformRole(principal: Principal, role: PlatformRole): void {
  if (!hasPlatformRole(principal, role)) {
    throw new AppError('AUTH_FORBIDDEN', `This operation requires the ${role} role`);
  }
}

/** Who a request came from, as ids for its log line: never a token or a secret. */
export interface ActorIds {
  type: Principal['type'];
  id: string;
  keyId?: string;
  onBehalfOf?: string;
}

export function actorIdsOf(principal: Principal): ActorIds {
  const ids: ActorIds = { type: principal.type, id: principal.subject };
  if (principal.apiKeyId !== undefined) ids.keyId = principal.apiKeyId;
  if (principal.onBehalfOf !== undefined) ids.onBehalfOf = principal.onBehalfOf.subject;
  return ids;
}
