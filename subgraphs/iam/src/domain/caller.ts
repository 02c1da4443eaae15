import type { AccessModelReader } from '@aifactory/access-model';
import type { Access } from '@aifactory/authz';
import type { Principal } from '@aifactory/service-auth';
import { actorOf } from '@aifactory/subgraph-kit';
import type { AuditCaller } from './audit.js';

/**
 * The request a read or change comes from: who asks, their authorization
 * (every check goes through `access`, so every deny is audited), the read
 * model's policy snapshots, and the correlation id its events carry.
 */
export interface Caller {
  principal: Principal;
  correlationId: string;
  access: Access;
  accessModel: Pick<AccessModelReader, 'policy' | 'ageMs'>;
}

export function originOf(caller: Pick<Caller, 'principal' | 'correlationId'>): AuditCaller {
  return { actor: actorOf(caller.principal), correlationId: caller.correlationId };
}

/** Whether one of the principal's platform roles carries the scope everywhere (no per-row filtering needed). */
export function platformWide(caller: Caller, scope: string): boolean {
  const { catalog } = caller.access;
  return caller.principal.platformRoles.some((role) => catalog.platformRoleScopes(role).has(scope));
}
