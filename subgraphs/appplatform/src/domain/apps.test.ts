import type { Principal } from '@aifactory/service-auth';
import type { App } from '../data/apps.js';
import { AppService, type AppStorage } from './apps.js';

const admin: Principal = { type: 'user', subject: 'u1', platformRoles: ['platform_admin'], grants: [] };
const developer: Principal = { type: 'user', subject: 'u2', platformRoles: ['internal_developer'], grants: [] };

const projectId = '00000000-0000-4000-8000-000000000003';
const chatbot: App = {
  id: '00000000-0000-4000-8000-0000000000a1',
  organizationId: '00000000-0000-4000-8000-000000000001',
  departmentId: '00000000-0000-4000-8000-000000000002',
  projectId,
  name: 'chatbot',
  template: 'open-webui',
  status: 'running',
  createdAt: new Date('2025-01-01T00:00:00Z'),
};

class InMemoryApps implements AppStorage {
  constructor(private readonly apps: App[]) {}

  async appsOf(projectId: string): Promise<App[]> {
    return this.apps.filter((app) => app.projectId === projectId);
  }

  async findApp(id: string): Promise<App | null> {
    return this.apps.find((app) => app.id === id) ?? null;
  }
}

describe('AppService', () => {
  const apps = new AppService(new InMemoryApps([chatbot]));

  it('returns nothing to a principal without platform_admin', async () => {
    expect(await apps.appsOf(developer, projectId)).toEqual([]);
    expect(await apps.app(developer, chatbot.id)).toBeNull();
  });

  it('shows a platform admin every app of the project', async () => {
    expect(await apps.appsOf(admin, projectId)).toEqual([chatbot]);
    expect(await apps.app(admin, chatbot.id)).toEqual(chatbot);
  });

  it('treats ids that are not UUIDs as not found', async () => {
    expect(await apps.appsOf(admin, 'llm-training')).toEqual([]);
    expect(await apps.app(admin, 'chatbot')).toBeNull();
  });
});
