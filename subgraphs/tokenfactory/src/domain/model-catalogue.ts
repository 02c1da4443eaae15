import { z } from 'zod';
import { parseInput } from '@aifactory/errors';
import type { InferenceModel, ModelCatalogueStore } from '../data/model-catalogue.js';

const idSchema = z.uuid();

const modelInput = z.object({
  // Dots and underscores too: model names carry versions such as llama-3.1-8b-instruct.
  slug: z.string().regex(/^[a-z0-9](?:[a-z0-9._-]{0,125}[a-z0-9])?$/, 'must be 1-127 lowercase letters, digits, dots, underscores or dashes'),
  displayName: z.string().trim().min(1).max(200),
  // Postgres INTEGER column: anything above int32 would be a database error, not a bad-input one.
  contextWindow: z.int32().positive(),
});

export type ModelInput = z.input<typeof modelInput>;

/** The store's methods alone, so a test can hand the service an in-memory store. */
export type ModelCatalogueStorage = Pick<ModelCatalogueStore, keyof ModelCatalogueStore>;

/**
 * The catalogue of models served per token. It is public to every
 * authenticated caller, and the subgraph kit admits no other, so reads need
 * no principal.
 */
export class ModelCatalogueService {
  constructor(private readonly store: ModelCatalogueStorage) {}

  listModels(): Promise<InferenceModel[]> {
    return this.store.listModels();
  }

  async model(id: string): Promise<InferenceModel | null> {
    if (!idSchema.safeParse(id).success) return null;
    return this.store.findModel(id);
  }

  /** Idempotent by slug: the dev seed may run it any number of times. */
  async ensureModel(input: ModelInput): Promise<InferenceModel> {
    return this.store.ensureModel(parseInput(modelInput, input));
  }
}
