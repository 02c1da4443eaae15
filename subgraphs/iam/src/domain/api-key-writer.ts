import type { Outbox } from '@aifactory/subgraph-kit';
import type { AccessStore } from '../data/access.js';
import type { ApiKeyStore, ApiKeyWithProject } from '../data/api-keys.js';
import type { IamTransaction } from '../data/hierarchy.js';
import { auditEvent, type AuditCaller } from './audit.js';
import { apiKeyEvent } from './credential-events.js';

/** The audit resource of a key: the key itself, in its project. */
export function apiKeyResource(key: Pick<ApiKeyWithProject, 'id' | 'organizationId' | 'departmentId' | 'projectId'>) {
  return { organizationId: key.organizationId, departmentId: key.departmentId, projectId: key.projectId, type: 'api_key', id: key.id };
}

/**
 * What other changes do to API keys, inside their own transactions: a
 * project's archive suspends its keys, and a creator's departure from the
 * organization flags the keys they made. Each key affected gets a new
 * version and its `api_key.updated` event, which republishes its entry.
 */
export class ApiKeyWriter {
  constructor(
    private readonly keys: ApiKeyStore,
    private readonly access: AccessStore,
    private readonly outbox: Outbox,
  ) {}

  /** The project was archived in `tx`: its working keys' entries turn `project_archived` (the gateway refuses them as suspended). */
  async projectArchived(tx: IamTransaction, projectId: string, origin: AuditCaller): Promise<void> {
    for (const key of await this.keys.bumpWorkingKeysOfProject(tx, projectId)) {
      await this.outbox.add(tx, apiKeyEvent({ updated: 'project_archived' }, key, origin));
    }
  }

  /**
   * The user lost a role in the organization in `tx`. Holding none there any
   * more, they have left it: the keys they created keep working (issue 15)
   * and are flagged, each with an `iam.api_key.flag` audit record.
   */
  async membershipRemoved(tx: IamTransaction, userId: string, organizationId: string, origin: AuditCaller): Promise<void> {
    if (await this.access.holdsAnyRoleIn(tx, userId, organizationId)) return;
    for (const key of await this.keys.flagCreatorLeft(tx, userId, organizationId)) {
      await this.outbox.add(tx, apiKeyEvent({ updated: 'creator_left' }, key, origin));
      await this.outbox.add(
        tx,
        auditEvent({
          action: 'iam.api_key.flag',
          outcome: 'succeeded',
          caller: origin,
          scope: null,
          resource: apiKeyResource(key),
          reason: 'creator_left_organization',
          details: { keyId: key.id, prefix: key.prefix, creatorUserId: userId },
        }),
      );
    }
  }
}
