import type { TokenfactoryPrisma } from './database.js';
import type { InferenceModel } from '../generated/prisma/client.js';

export type { InferenceModel };

export interface NewInferenceModel {
  slug: string;
  displayName: string;
  contextWindow: number;
}

/** Storage of the model catalogue. */
export class ModelCatalogueStore {
  constructor(private readonly prisma: TokenfactoryPrisma) {}

  listModels(): Promise<InferenceModel[]> {
    return this.prisma.inferenceModel.findMany({ orderBy: { slug: 'asc' } });
  }

  findModel(id: string): Promise<InferenceModel | null> {
    return this.prisma.inferenceModel.findUnique({ where: { id } });
  }

  /** Creates the model unless one with the slug exists; never changes an existing one. */
  ensureModel(model: NewInferenceModel): Promise<InferenceModel> {
    return this.prisma.inferenceModel.upsert({ where: { slug: model.slug }, create: model, update: {} });
  }
}
