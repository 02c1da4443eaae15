import type { ServiceIdentity, ServiceIdentityKey } from '../generated/prisma/client.js';
import type { IamPrisma } from './database.js';
import type { IamTransaction } from './hierarchy.js';
import type { KeysetPage } from './registries-pages.js';

export type { ServiceIdentity, ServiceIdentityKey };

export type ServiceIdentityWithKeys = ServiceIdentity & { keys: ServiceIdentityKey[] };

const withKeys = { keys: { orderBy: [{ createdAt: 'asc' as const }, { kid: 'asc' as const }] } };

/** Storage of the platform's service identities and their public keys (never a private key). */
export class ServiceIdentityStore {
  constructor(private readonly prisma: IamPrisma) {}

  find(name: string, db: IamTransaction | IamPrisma = this.prisma): Promise<ServiceIdentityWithKeys | null> {
    return db.serviceIdentity.findUnique({ where: { name }, include: withKeys });
  }

  /** Keyed by name, a page at a time (one row past it tells whether another follows). */
  list(page: KeysetPage): Promise<ServiceIdentityWithKeys[]> {
    return this.prisma.serviceIdentity.findMany({
      where: page.afterKey === null ? {} : { name: { gt: page.afterKey } },
      orderBy: { name: 'asc' },
      take: page.limit + 1,
      include: withKeys,
    });
  }

  all(): Promise<ServiceIdentityWithKeys[]> {
    return this.prisma.serviceIdentity.findMany({ orderBy: { name: 'asc' }, include: withKeys });
  }

  /** The identity locked until `tx` ends: every change of it or its keys takes this lock first. */
  async lock(tx: IamTransaction, name: string): Promise<ServiceIdentityWithKeys | null> {
    const rows = await tx.$queryRaw<Array<{ name: string }>>`SELECT name FROM service_identities WHERE name = ${name} FOR UPDATE`;
    return rows.length === 1 ? this.find(name, tx) : null;
  }

  findKey(tx: IamTransaction, kid: string): Promise<ServiceIdentityKey | null> {
    return tx.serviceIdentityKey.findUnique({ where: { kid } });
  }

  async setStatus(tx: IamTransaction, name: string, change: { status: 'active' | 'disabled'; reason: string | null }): Promise<ServiceIdentityWithKeys> {
    const now = new Date();
    await tx.serviceIdentity.update({
      where: { name },
      data: {
        status: change.status,
        disabledAt: change.status === 'disabled' ? now : null,
        disabledReason: change.reason,
        version: { increment: 1 },
        updatedAt: now,
      },
    });
    return (await this.find(name, tx))!;
  }

  async addKey(tx: IamTransaction, name: string, key: { kid: string; publicKeyPem: string }): Promise<ServiceIdentityWithKeys> {
    await tx.serviceIdentityKey.create({ data: { ...key, serviceName: name } });
    return this.bump(tx, name);
  }

  async retireKey(tx: IamTransaction, name: string, kid: string): Promise<ServiceIdentityWithKeys> {
    await tx.serviceIdentityKey.update({ where: { kid }, data: { retiredAt: new Date() } });
    return this.bump(tx, name);
  }

  private async bump(tx: IamTransaction, name: string): Promise<ServiceIdentityWithKeys> {
    await tx.serviceIdentity.update({ where: { name }, data: { version: { increment: 1 }, updatedAt: new Date() } });
    return (await this.find(name, tx))!;
  }
}
