import { z } from 'zod';
import type { Access } from '@aifactory/authz';
import type { App, AppStore } from '../data/apps.js';

const idSchema = z.uuid();

/** The store's methods alone, so a test can hand the service an in-memory store. */
export type AppStorage = Pick<AppStore, keyof AppStore>;

const READ_SCOPE = 'appplatform:instance:read';

/**
 * Reads the applications deployed into projects. Each row carries its
 * organization, department and project, and is shown only where `can()`
 * says the caller holds the read scope on it.
 */
export class AppService {
  constructor(private readonly store: AppStorage) {}

  async appsOf(access: Access, projectId: string): Promise<App[]> {
    if (!idSchema.safeParse(projectId).success) return [];
    const apps = await this.store.appsOf(projectId);
    // One project, so one decision covers every row; the refusal is audited once.
    const [first] = apps;
    return first && access.can(READ_SCOPE, first) ? apps : [];
  }

  async app(access: Access, id: string): Promise<App | null> {
    if (!idSchema.safeParse(id).success) return null;
    const app = await this.store.findApp(id);
    return app && access.can(READ_SCOPE, app) ? app : null;
  }
}
