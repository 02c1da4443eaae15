import { z } from 'zod';
import { principalEntrySchema, type PrincipalEntry } from '@aifactory/authz';
import { AppError } from '@aifactory/errors';
import { CORRELATION_HEADER } from '@aifactory/http';
import type { InternalTokenSigner, Principal } from '@aifactory/service-auth';
import type { EdgeIdentity } from './pomerium.js';

/** The gateway's own identity towards iam's internal routes: iam accepts sign-ins from nobody else. */
export const GATEWAY_SERVICE_PRINCIPAL: Principal = { type: 'service', subject: 'gateway', platformRoles: [], grants: [] };

const signInAnswerSchema = z.object({ principal: principalEntrySchema });

export interface IamSignInOptions {
  /** iam's origin; undefined while the supergraph names no iam subgraph. */
  iamBaseUrl(): string | undefined;
  signer: InternalTokenSigner;
  timeoutMs: number;
}

export type SignIn = (identity: EdgeIdentity, correlationId: string) => Promise<PrincipalEntry>;

/**
 * `POST /api/internal/sign-in` on iam: creates or updates the user from the
 * verified edge identity and claims pending invitations for a verified email
 * (issue 14, Model). Any failure is IAM_UNAVAILABLE: the caller decides
 * whether the read model can answer instead.
 */
export function iamSignIn(options: IamSignInOptions): SignIn {
  return async (identity, correlationId) => {
    const base = options.iamBaseUrl();
    if (base === undefined) throw new AppError('IAM_UNAVAILABLE', 'Sign-in is unavailable right now; retry shortly', { details: { reason: 'no iam subgraph' } });
    const token = await options.signer.mint({ audience: 'iam', principal: GATEWAY_SERVICE_PRINCIPAL, correlationId });
    const body = JSON.stringify({
      issuer: identity.iss,
      subject: identity.sub,
      ...(identity.email !== undefined ? { email: identity.email } : {}),
      emailVerified: identity.email_verified,
      ...(identity.name !== undefined ? { name: identity.name } : {}),
    });
    let response: Response;
    try {
      response = await fetch(new URL('/api/internal/sign-in', base), {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, [CORRELATION_HEADER]: correlationId },
        body,
        signal: AbortSignal.timeout(options.timeoutMs),
      });
    } catch (error) {
      throw new AppError('IAM_UNAVAILABLE', 'Sign-in is unavailable right now; retry shortly', { cause: error, details: { reason: 'unreachable' } });
    }
    const text = await response.text().catch(() => '');
    if (!response.ok) {
      throw new AppError('IAM_UNAVAILABLE', 'Sign-in is unavailable right now; retry shortly', { details: { reason: 'refused', status: response.status, body: text.slice(0, 500) } });
    }
    const answer = signInAnswerSchema.safeParse(safeJson(text));
    if (!answer.success) throw new AppError('IAM_UNAVAILABLE', 'Sign-in is unavailable right now; retry shortly', { cause: answer.error, details: { reason: 'malformed answer' } });
    return answer.data.principal;
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
