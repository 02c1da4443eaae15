import { z } from 'zod';
import { AppError, parseInput } from '@aifactory/errors';
import type { Outbox } from '@aifactory/subgraph-kit';
import type { AccessStore } from '../data/access.js';
import { isUniqueViolation, type HierarchyStore, type Project } from '../data/hierarchy.js';
import type { ServiceAccount, ServiceAccountStore } from '../data/service-accounts.js';
import { auditEvent } from './audit.js';
import { originOf, type Caller } from './caller.js';
import { serviceAccountCreated } from './credential-events.js';
import { labelsSchema } from './labels.js';
import { connectionOf, emptyConnection, type Connection, type PageRequest } from './pagination.js';

export const SERVICE_ACCOUNT_READ = 'platform:service_account:read';
export const SERVICE_ACCOUNT_MANAGE = 'platform:service_account:manage';

const createInput = z.object({
  projectId: z.uuid(),
  name: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'must be 1-63 lowercase letters, digits or dashes'),
  description: z.string().trim().max(500).nullish(),
  labels: labelsSchema.nullish(),
});

/** The ids `can()` checks a service account (or its project) against. */
export function projectResource(row: Pick<ServiceAccount, 'organizationId' | 'departmentId' | 'projectId'>) {
  return { organizationId: row.organizationId, departmentId: row.departmentId, projectId: row.projectId };
}

/**
 * Service accounts: a project's machine identities (issue 15). They belong
 * to one project, so to its department and organization; their API keys
 * are their credentials.
 */
export class ServiceAccountService {
  constructor(
    private readonly store: ServiceAccountStore,
    private readonly hierarchy: HierarchyStore,
    private readonly access: AccessStore,
    private readonly outbox: Outbox,
  ) {}

  /** Null when it does not exist or the caller may not see it (the refusal is audited). */
  async serviceAccount(caller: Caller, id: string): Promise<ServiceAccount | null> {
    const account = z.uuid().safeParse(id).success ? await this.store.find(id) : null;
    return account && caller.access.can(SERVICE_ACCOUNT_READ, projectResource(account)) ? account : null;
  }

  /** The account of a visible key: shown without a second check, as a project's parents are. */
  parent(id: string): Promise<ServiceAccount | null> {
    return this.store.find(id);
  }

  /** The project's service accounts, oldest first; empty (and the refusal audited) for a caller who may not see them. */
  async serviceAccountsOf(caller: Caller, project: Project, page: PageRequest): Promise<Connection<ServiceAccount>> {
    if (!caller.access.can(SERVICE_ACCOUNT_READ, { organizationId: project.organizationId, departmentId: project.departmentId, projectId: project.id })) {
      return emptyConnection();
    }
    return connectionOf(await this.store.ofProject(project.id, page), page);
  }

  /** In an active project only; the name is unique in it (IAM_DUPLICATE). */
  async createServiceAccount(
    caller: Caller,
    input: { projectId: string; name: string; description?: string | null; labels?: Array<{ key: string; value: string }> | null },
  ): Promise<ServiceAccount> {
    const valid = parseInput(createInput, input);
    const project = await this.hierarchy.findProject(valid.projectId);
    if (!project) throw new AppError('NOT_FOUND', 'Project not found');
    const resource = { organizationId: project.organizationId, departmentId: project.departmentId, projectId: project.id };
    caller.access.require(SERVICE_ACCOUNT_MANAGE, resource);
    const creator = await this.access.userOfPrincipal(caller.principal);
    const origin = originOf(caller);
    return this.hierarchy.transaction(async (tx) => {
      // Archiving locks the project's row: no account is created into a project being archived.
      const locked = await this.hierarchy.lockProject(tx, project.id);
      if (!locked) throw new AppError('NOT_FOUND', 'Project not found');
      if (locked.status !== 'active') throw new AppError('IAM_ARCHIVED', 'The project is archived');
      const account = await this.store
        .create(tx, {
          ...resource,
          name: valid.name,
          description: valid.description ?? '',
          labels: valid.labels ?? [],
          createdBy: creator?.id ?? null,
        })
        .catch((error: unknown) => {
          throw isUniqueViolation(error) ? new AppError('IAM_DUPLICATE', 'A service account with this name already exists in the project', { cause: error }) : error;
        });
      await this.outbox.add(tx, serviceAccountCreated(account, origin));
      await this.outbox.add(
        tx,
        auditEvent({
          action: 'iam.service_account.create',
          outcome: 'succeeded',
          caller: origin,
          scope: SERVICE_ACCOUNT_MANAGE,
          resource: { ...resource, type: 'service_account', id: account.id },
          details: { name: account.name },
        }),
      );
      return account;
    });
  }
}
