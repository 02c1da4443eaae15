import type { GpuaasPrisma } from './database.js';
import type { Sku } from '../generated/prisma/client.js';

export type { Sku };

export interface NewSku {
  code: string;
  displayName: string;
  gpuModel: string;
  gpuCount: number;
  gpuMemoryGib: number;
  vcpuCount: number;
  memoryGib: number;
}

/** Storage of the SKU catalogue. */
export class SkuCatalogueStore {
  constructor(private readonly prisma: GpuaasPrisma) {}

  listSkus(): Promise<Sku[]> {
    return this.prisma.sku.findMany({ orderBy: { code: 'asc' } });
  }

  findSku(id: string): Promise<Sku | null> {
    return this.prisma.sku.findUnique({ where: { id } });
  }

  /** Creates the SKU unless one with the code exists; never changes an existing one. */
  ensureSku(sku: NewSku): Promise<Sku> {
    return this.prisma.sku.upsert({ where: { code: sku.code }, create: sku, update: {} });
  }
}
