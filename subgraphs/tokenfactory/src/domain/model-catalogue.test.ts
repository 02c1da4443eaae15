import type { InferenceModel, NewInferenceModel } from '../data/model-catalogue.js';
import { ModelCatalogueService, type ModelCatalogueStorage } from './model-catalogue.js';

class InMemoryModelCatalogue implements ModelCatalogueStorage {
  readonly models: InferenceModel[] = [];

  async listModels(): Promise<InferenceModel[]> {
    return [...this.models].sort((a, b) => a.slug.localeCompare(b.slug));
  }

  async findModel(id: string): Promise<InferenceModel | null> {
    return this.models.find((model) => model.id === id) ?? null;
  }

  async ensureModel(model: NewInferenceModel): Promise<InferenceModel> {
    const existing = this.models.find((candidate) => candidate.slug === model.slug);
    if (existing) return existing;
    const row: InferenceModel = { ...model, id: crypto.randomUUID(), status: 'active', createdAt: new Date() };
    this.models.push(row);
    return row;
  }
}

const llama = { slug: 'llama-3.1-8b-instruct', displayName: 'Llama 3.1 8B Instruct', contextWindow: 131_072 };

describe('ModelCatalogueService', () => {
  let store: InMemoryModelCatalogue;
  let catalogue: ModelCatalogueService;

  beforeEach(() => {
    store = new InMemoryModelCatalogue();
    catalogue = new ModelCatalogueService(store);
  });

  it('refuses a context window of zero tokens', async () => {
    await expect(catalogue.ensureModel({ ...llama, contextWindow: 0 })).rejects.toMatchObject({ code: 'BAD_REQUEST_INVALID_INPUT' });
    expect(store.models).toEqual([]);
  });

  it('refuses a context window the database column cannot hold', async () => {
    await expect(catalogue.ensureModel({ ...llama, contextWindow: 2 ** 31 })).rejects.toMatchObject({
      code: 'BAD_REQUEST_INVALID_INPUT',
    });
  });

  it('accepts a versioned slug', async () => {
    expect(await catalogue.ensureModel(llama)).toMatchObject({ slug: 'llama-3.1-8b-instruct', status: 'active' });
  });

  it('treats an id that is not a UUID as not found', async () => {
    await catalogue.ensureModel(llama);

    expect(await catalogue.model('llama-3.1-8b-instruct')).toBeNull();
  });
});
