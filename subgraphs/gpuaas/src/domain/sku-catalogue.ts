import { z } from 'zod';
import { parseInput } from '@aifactory/errors';
import type { Sku, SkuCatalogueStore } from '../data/sku-catalogue.js';

const idSchema = z.uuid();
// Postgres INTEGER columns: anything above int32 would be a database error, not a bad-input one.
const positiveCount = z.int32().positive();

const skuInput = z.object({
  code: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/, 'must be 1-63 lowercase letters, digits or dashes'),
  displayName: z.string().trim().min(1).max(200),
  gpuModel: z.string().trim().min(1).max(200),
  gpuCount: positiveCount,
  gpuMemoryGib: positiveCount,
  vcpuCount: positiveCount,
  memoryGib: positiveCount,
});

export type SkuInput = z.input<typeof skuInput>;

/** The store's methods alone, so a test can hand the service an in-memory store. */
export type SkuCatalogueStorage = Pick<SkuCatalogueStore, keyof SkuCatalogueStore>;

/**
 * The catalogue of GPU machine shapes. It is public to every authenticated
 * caller, and the subgraph kit admits no other, so reads need no principal.
 */
export class SkuCatalogueService {
  constructor(private readonly store: SkuCatalogueStorage) {}

  listSkus(): Promise<Sku[]> {
    return this.store.listSkus();
  }

  async sku(id: string): Promise<Sku | null> {
    if (!idSchema.safeParse(id).success) return null;
    return this.store.findSku(id);
  }

  /** Idempotent by code: the dev seed may run it any number of times. */
  async ensureSku(input: SkuInput): Promise<Sku> {
    return this.store.ensureSku(parseInput(skuInput, input));
  }
}
