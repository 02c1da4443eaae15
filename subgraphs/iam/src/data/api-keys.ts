import type { PageRequest } from '../domain/pagination.js';
import type { ApiKey, LifecycleStatus, Prisma } from '../generated/prisma/client.js';
import type { IamPrisma } from './database.js';
import type { IamTransaction } from './hierarchy.js';
import { keysetPage } from './keyset.js';

export type { ApiKey };

/** A key with its project's status: an archived project suspends its keys, and every view and entry says so. */
export type ApiKeyWithProject = ApiKey & { project: { status: LifecycleStatus } };

const withProject = { project: { select: { status: true } } } as const;

export interface NewApiKey {
  id: string;
  serviceAccountId: string;
  organizationId: string;
  departmentId: string;
  projectId: string;
  prefix: string;
  fingerprint: string;
  hash: string;
  pepperVersion: number;
  scopes: string[];
  labels: Prisma.InputJsonValue;
  expiresAt: Date | null;
  createdBy: string | null;
  registryVersion: number;
  rotatedFromKeyId?: string;
}

/** One use the gateway reports: the key and when it was used. */
export interface KeyUse {
  keyId: string;
  usedAt: Date;
}

/**
 * Storage of API keys. Every change bumps the key's version, which its
 * events and its read-model entry carry; last use is the one column that
 * changes without it (it is nobody's business but the key's listing).
 */
export class ApiKeyStore {
  constructor(private readonly prisma: IamPrisma) {}

  find(id: string, db: IamTransaction | IamPrisma = this.prisma): Promise<ApiKeyWithProject | null> {
    return db.apiKey.findUnique({ where: { id }, include: withProject });
  }

  findMany(ids: readonly string[], db: IamTransaction | IamPrisma = this.prisma): Promise<ApiKeyWithProject[]> {
    return db.apiKey.findMany({ where: { id: { in: [...ids] } }, include: withProject, orderBy: { id: 'asc' } });
  }

  /** The key locked until `tx` ends, so two rotations or a rotation and a revocation are judged one after the other. */
  async lock(tx: IamTransaction, id: string): Promise<ApiKeyWithProject | null> {
    const rows = await tx.$queryRaw<Array<{ key_id: string }>>`SELECT key_id FROM api_keys WHERE key_id = ${id} FOR UPDATE`;
    return rows.length === 1 ? this.find(id, tx) : null;
  }

  /**
   * The project's status under a share lock until `tx` ends: archiving takes
   * the row FOR UPDATE, so a key is never created or rotated into a project
   * being archived without the archive seeing it.
   */
  async projectStatusShared(tx: IamTransaction, projectId: string): Promise<LifecycleStatus | null> {
    const rows = await tx.$queryRaw<Array<{ status: LifecycleStatus }>>`SELECT status FROM projects WHERE id = ${projectId}::uuid FOR SHARE`;
    return rows[0]?.status ?? null;
  }

  ofProject(projectId: string, page: PageRequest): Promise<ApiKeyWithProject[]> {
    const { after, orderBy, take } = keysetPage(page);
    return this.prisma.apiKey.findMany({ where: { AND: [after, { projectId }] }, orderBy, take, include: withProject });
  }

  ofServiceAccount(serviceAccountId: string, page: PageRequest): Promise<ApiKeyWithProject[]> {
    const { after, orderBy, take } = keysetPage(page);
    return this.prisma.apiKey.findMany({ where: { AND: [after, { serviceAccountId }] }, orderBy, take, include: withProject });
  }

  /** Keyset pages over every key, for a full rebuild of the read model. */
  page(page: PageRequest): Promise<ApiKeyWithProject[]> {
    const { after, orderBy, take } = keysetPage(page);
    return this.prisma.apiKey.findMany({ where: after, orderBy, take, include: withProject });
  }

  async create(tx: IamTransaction, input: NewApiKey): Promise<ApiKeyWithProject> {
    await tx.apiKey.create({ data: input });
    return (await this.find(input.id, tx))!;
  }

  /** The old key of a rotation: it names its successor and works until `graceUntil`. */
  async markRotated(tx: IamTransaction, id: string, change: { graceUntil: Date; rotatedToKeyId: string }): Promise<ApiKeyWithProject> {
    await tx.apiKey.update({ where: { id }, data: { ...change, version: { increment: 1 }, updatedAt: new Date() } });
    return (await this.find(id, tx))!;
  }

  async revoke(tx: IamTransaction, id: string, change: { revokedBy: string; revokeReason: string | null }): Promise<ApiKeyWithProject> {
    const now = new Date();
    await tx.apiKey.update({
      where: { id },
      data: { ...change, status: 'revoked', revokedAt: now, version: { increment: 1 }, updatedAt: now },
    });
    return (await this.find(id, tx))!;
  }

  /** Flags the user's working keys in the organization; returns them after the change. */
  async flagCreatorLeft(tx: IamTransaction, userId: string, organizationId: string): Promise<ApiKeyWithProject[]> {
    const rows = await tx.$queryRaw<Array<{ key_id: string }>>`
      UPDATE api_keys SET creator_left_at = now(), version = version + 1, updated_at = now()
      WHERE created_by = ${userId}::uuid AND organization_id = ${organizationId}::uuid AND creator_left_at IS NULL AND status = 'active'
      RETURNING key_id`;
    return rows.length === 0 ? [] : this.findMany(rows.map((row) => row.key_id), tx);
  }

  /** A new version of every working key of the project, so their entries are republished as suspended. */
  async bumpWorkingKeysOfProject(tx: IamTransaction, projectId: string): Promise<ApiKeyWithProject[]> {
    const rows = await tx.$queryRaw<Array<{ key_id: string }>>`
      UPDATE api_keys SET version = version + 1, updated_at = now()
      WHERE project_id = ${projectId}::uuid AND status = 'active'
      RETURNING key_id`;
    return rows.length === 0 ? [] : this.findMany(rows.map((row) => row.key_id), tx);
  }

  /**
   * Last use, in one statement with no read before it: a key's latest
   * reported use is written only where none is stored or the stored one is
   * over a minute older, so it is written at most once a minute per key
   * (issue 15) however many gateways report it. A use reported from the future counts as now.
   * Returns the keys written.
   */
  async recordUses(uses: readonly KeyUse[]): Promise<string[]> {
    if (uses.length === 0) return [];
    const rows = await this.prisma.$queryRaw<Array<{ key_id: string }>>`
      UPDATE api_keys AS k SET last_used_at = u.used_at
      FROM (
        SELECT DISTINCT ON (key_id) key_id, LEAST(used_at, now()) AS used_at
        FROM unnest(${uses.map((use) => use.keyId)}::text[], ${uses.map((use) => use.usedAt.toISOString())}::timestamptz[]) AS t(key_id, used_at)
        ORDER BY key_id, used_at DESC
      ) AS u
      WHERE k.key_id = u.key_id
        AND (k.last_used_at IS NULL OR k.last_used_at < u.used_at - interval '1 minute')
      RETURNING k.key_id`;
    return rows.map((row) => row.key_id);
  }

  /** Moves the key to a newer pepper version only: an older or equal one changes nothing (null). */
  async rehash(tx: IamTransaction, id: string, pepperVersion: number, hash: string): Promise<ApiKeyWithProject | null> {
    const { count } = await tx.apiKey.updateMany({
      where: { id, pepperVersion: { lt: pepperVersion } },
      data: { pepperVersion, hash, version: { increment: 1 }, updatedAt: new Date() },
    });
    return count === 1 ? this.find(id, tx) : null;
  }
}
