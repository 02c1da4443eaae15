import type { AppplatformPrisma } from './database.js';
import type { App } from '../generated/prisma/client.js';

export type { App };

/** Storage of the applications deployed into projects. */
export class AppStore {
  constructor(private readonly prisma: AppplatformPrisma) {}

  appsOf(projectId: string): Promise<App[]> {
    return this.prisma.app.findMany({ where: { projectId }, orderBy: { name: 'asc' } });
  }

  findApp(id: string): Promise<App | null> {
    return this.prisma.app.findUnique({ where: { id } });
  }
}
