import { signAssertion, type AssertionKey } from '@aifactory/dev-identity';
import type { DevConfig } from './dev-config.js';

export interface DevTokenRequest {
  email: string;
  roles: string[];
  expiresInSeconds?: number;
}

/**
 * A dev assertion for a person: platform roles become the groups the
 * configured mapping turns back into those roles, exactly as Pomerium's
 * `groups` claim would.
 */
export async function devAssertion(config: DevConfig, key: AssertionKey, request: DevTokenRequest): Promise<string> {
  const groups = request.roles.map((role) => {
    const group = config.PLATFORM_ROLE_GROUPS[role]?.[0];
    if (!group) throw new Error(`no group maps to the role "${role}" in PLATFORM_ROLE_GROUPS`);
    return group;
  });
  return signAssertion(key, {
    issuer: config.DEV_IDP_ISSUER,
    audience: config.DEV_IDP_AUDIENCE,
    subject: `dev|${request.email}`,
    email: request.email,
    groups,
    ...(request.expiresInSeconds === undefined ? {} : { expiresInSeconds: request.expiresInSeconds }),
  });
}
