import { z } from 'zod';
import { hasPlatformRole, type Principal } from '@aifactory/service-auth';
import type { App, AppStore } from '../data/apps.js';

const idSchema = z.uuid();

/** The store's methods alone, so a test can hand the service an in-memory store. */
export type AppStorage = Pick<AppStore, keyof AppStore>;

/**
 * Reads the applications deployed into projects. Until IAM memberships exist
 * (the IAM issue), only platform admins see any of them: every read fails
 * closed for everyone else.
 */
export class AppService {
  constructor(private readonly store: AppStorage) {}

  private canSeeEverything(principal: Principal): boolean {
    return hasPlatformRole(principal, 'platform_admin');
  }

  async appsOf(principal: Principal, projectId: string): Promise<App[]> {
    if (!this.canSeeEverything(principal) || !idSchema.safeParse(projectId).success) return [];
    return this.store.appsOf(projectId);
  }

  async app(principal: Principal, id: string): Promise<App | null> {
    if (!this.canSeeEverything(principal) || !idSchema.safeParse(id).success) return null;
    return this.store.findApp(id);
  }
}
