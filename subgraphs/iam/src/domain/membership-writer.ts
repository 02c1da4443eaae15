import { AppError } from '@aifactory/errors';
import type { Outbox } from '@aifactory/subgraph-kit';
import type { AccessStore, Membership, NodePlacement, User } from '../data/access.js';
import { isUniqueViolation, type IamTransaction } from '../data/hierarchy.js';
import { membershipChanged, userChanged } from './access-events.js';
import { auditEvent, type AuditCaller } from './audit.js';

/** The audit resource of a membership or invitation: its own id, under its node's organization and project. */
export function membershipResource(row: NodePlacement & { id: string }, type: 'membership' | 'invitation') {
  return { organizationId: row.organizationId, departmentId: row.departmentId, projectId: row.projectId, type, id: row.id };
}

/**
 * The writes every membership change shares, inside the caller's
 * transaction: the row, its `membership.changed` event, its audit event, and
 * the holder's access version with `user.changed`, which is what moves the
 * change into the access read model.
 */
export class MembershipWriter {
  constructor(
    private readonly store: AccessStore,
    private readonly outbox: Outbox,
  ) {}

  async grantInTransaction(
    tx: IamTransaction,
    origin: AuditCaller,
    scope: string | null,
    input: { userId: string; role: string; placement: NodePlacement },
  ): Promise<Membership> {
    const membership = await this.store
      .createMembership(tx, { ...input.placement, userId: input.userId, role: input.role, grantedBy: origin.actor.id })
      .catch((error: unknown) => {
        throw isUniqueViolation(error) ? new AppError('IAM_DUPLICATE', 'The user already holds a role there', { cause: error }) : error;
      });
    await this.outbox.add(tx, membershipChanged(membership, 'granted', membership.version, origin));
    await this.outbox.add(
      tx,
      auditEvent({
        action: 'iam.membership.grant',
        outcome: 'succeeded',
        caller: origin,
        scope,
        resource: membershipResource(membership, 'membership'),
        details: { userId: membership.userId, role: membership.role, level: membership.level, nodeId: membership.nodeId },
      }),
    );
    await this.userAccessChanged(tx, membership.userId, origin);
    return membership;
  }

  /** +1 on the user's access version and `user.changed` at it: the projection re-reads their grants from it. */
  async userAccessChanged(tx: IamTransaction, userId: string, origin: AuditCaller): Promise<User> {
    const user = await this.store.bumpAccessVersion(tx, userId);
    await this.outbox.add(tx, userChanged(user, await this.store.platformRolesOf(userId, tx), origin));
    return user;
  }
}
