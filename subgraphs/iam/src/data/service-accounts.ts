import type { PageRequest } from '../domain/pagination.js';
import type { Prisma, ServiceAccount } from '../generated/prisma/client.js';
import type { IamPrisma } from './database.js';
import type { IamTransaction } from './hierarchy.js';
import { keysetPage } from './keyset.js';

export type { ServiceAccount };

/** Storage of service accounts: a project's machine identities. */
export class ServiceAccountStore {
  constructor(private readonly prisma: IamPrisma) {}

  find(id: string, db: IamTransaction | IamPrisma = this.prisma): Promise<ServiceAccount | null> {
    return db.serviceAccount.findUnique({ where: { id } });
  }

  ofProject(projectId: string, page: PageRequest): Promise<ServiceAccount[]> {
    const { after, orderBy, take } = keysetPage(page);
    return this.prisma.serviceAccount.findMany({ where: { AND: [after, { projectId }] }, orderBy, take });
  }

  create(
    tx: IamTransaction,
    input: {
      organizationId: string;
      departmentId: string;
      projectId: string;
      name: string;
      description: string;
      labels: Prisma.InputJsonValue;
      createdBy: string | null;
    },
  ): Promise<ServiceAccount> {
    return tx.serviceAccount.create({ data: input });
  }
}
