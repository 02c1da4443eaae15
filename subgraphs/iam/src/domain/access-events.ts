import { membershipChangedV1, userChangedV1, type MembershipChangedPayload } from '@aifactory/contracts';
import type { OutboxEventInput } from '@aifactory/events';
import type { PlatformRole } from '@aifactory/service-auth';
import type { Invitation, Membership, User } from '../data/access.js';
import type { EventOrigin } from './hierarchy-events.js';

type MembershipChange = MembershipChangedPayload['change'];

/**
 * `platform.iam.membership.changed` v1. An invitation and the membership it
 * becomes share one id and one story: invited (v1), claimed (v2), and so on;
 * a removal or revocation is the aggregate's last version.
 */
export function membershipChanged(
  row: Membership | Invitation,
  change: MembershipChange,
  aggregateVersion: number,
  origin: EventOrigin,
): OutboxEventInput {
  const pending = change === 'invited' || change === 'revoked';
  const payload: MembershipChangedPayload = {
    membershipId: row.id,
    organizationId: row.organizationId,
    level: row.level,
    nodeId: row.nodeId,
    departmentId: row.departmentId,
    projectId: row.projectId,
    role: row.role,
    status: change === 'invited' ? 'pending' : change === 'removed' || change === 'revoked' ? 'removed' : 'active',
    userId: pending || !('userId' in row) ? null : row.userId,
    change,
  };
  return {
    type: membershipChangedV1.type,
    version: membershipChangedV1.version,
    aggregateId: row.id,
    aggregateVersion,
    organizationId: row.organizationId,
    departmentId: row.departmentId,
    projectId: row.projectId,
    actor: origin.actor,
    correlationId: origin.correlationId,
    payload,
  };
}

/**
 * `platform.iam.user.changed` v1 at the user's access version: IAM's read
 * model projection re-reads the user's grants on it, so every change of a
 * user's memberships or platform roles must bump the version and write it.
 */
export function userChanged(user: User, platformRoles: readonly PlatformRole[], origin: EventOrigin): OutboxEventInput {
  return {
    type: userChangedV1.type,
    version: userChangedV1.version,
    aggregateId: user.id,
    aggregateVersion: user.accessVersion,
    actor: origin.actor,
    correlationId: origin.correlationId,
    payload: { id: user.id, email: user.email, name: user.name, platformRoles: [...platformRoles] },
  };
}
