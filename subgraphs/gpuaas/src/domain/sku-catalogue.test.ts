import type { NewSku, Sku } from '../data/sku-catalogue.js';
import { SkuCatalogueService, type SkuCatalogueStorage } from './sku-catalogue.js';

class InMemorySkuCatalogue implements SkuCatalogueStorage {
  readonly skus: Sku[] = [];

  async listSkus(): Promise<Sku[]> {
    return [...this.skus].sort((a, b) => a.code.localeCompare(b.code));
  }

  async findSku(id: string): Promise<Sku | null> {
    return this.skus.find((sku) => sku.id === id) ?? null;
  }

  async ensureSku(sku: NewSku): Promise<Sku> {
    const existing = this.skus.find((candidate) => candidate.code === sku.code);
    if (existing) return existing;
    const row: Sku = { ...sku, id: crypto.randomUUID(), status: 'active', createdAt: new Date() };
    this.skus.push(row);
    return row;
  }
}

const h100 = {
  code: 'h100-80gb-x8',
  displayName: '8x H100 80GB',
  gpuModel: 'NVIDIA H100 80GB',
  gpuCount: 8,
  gpuMemoryGib: 80,
  vcpuCount: 208,
  memoryGib: 1800,
};

describe('SkuCatalogueService', () => {
  let store: InMemorySkuCatalogue;
  let catalogue: SkuCatalogueService;

  beforeEach(() => {
    store = new InMemorySkuCatalogue();
    catalogue = new SkuCatalogueService(store);
  });

  it('refuses a SKU without GPUs', async () => {
    await expect(catalogue.ensureSku({ ...h100, gpuCount: 0 })).rejects.toMatchObject({ code: 'BAD_REQUEST_INVALID_INPUT' });
    expect(store.skus).toEqual([]);
  });

  it('refuses a code that is not URL-safe', async () => {
    await expect(catalogue.ensureSku({ ...h100, code: 'H100 x8' })).rejects.toMatchObject({ code: 'BAD_REQUEST_INVALID_INPUT' });
  });

  it('treats an id that is not a UUID as not found', async () => {
    await catalogue.ensureSku(h100);

    expect(await catalogue.sku('h100-80gb-x8')).toBeNull();
  });
});
