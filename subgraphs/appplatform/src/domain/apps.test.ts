import { Access, buildCatalogSnapshot, Catalog, DenyAuditor, type DeniedAccess } from '@aifactory/authz';
import { loadRegistryData } from '@aifactory/contracts';
import { createLogger } from '@aifactory/logging';
import type { Principal } from '@aifactory/service-auth';
import type { App } from '../data/apps.js';
import { AppService, type AppStorage } from './apps.js';

const registry = loadRegistryData();
const catalog = new Catalog(
  buildCatalogSnapshot({
    scopes: registry.scopes,
    roles: registry.roles,
    registryVersions: { scopes: 1 },
    publishedAt: new Date().toISOString(),
  }),
);
const denied: DeniedAccess[] = [];
const denies = new DenyAuditor({
  publisher: 'appplatform',
  sink: { write: async (deny) => void denied.push(deny) },
  logger: createLogger({ service: 'appplatform-test', level: 'silent' }),
});
const accessOf = (principal: Principal) => new Access({ principal, catalog, correlationId: 'test-correlation', denies });

const admin = accessOf({ type: 'user', subject: 'u1', platformRoles: ['platform_admin'], grants: [] });
const developer = accessOf({ type: 'user', subject: 'u2', platformRoles: ['internal_developer'], grants: [] });

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

  it('returns nothing to a principal without the read scope on the project, and audits the refusal', async () => {
    expect(await apps.appsOf(developer, projectId)).toEqual([]);
    expect(await apps.app(developer, chatbot.id)).toBeNull();
    await denies.flush();
    expect(denied.map((deny) => [deny.record.scope, deny.projectId])).toEqual([['appplatform:instance:read', projectId]]);
  });

  it('shows a project member the apps of their project only', async () => {
    const member = accessOf({
      type: 'user',
      subject: 'u3',
      platformRoles: [],
      grants: [{ level: 'project', id: projectId, role: 'project_member', org: chatbot.organizationId, dept: chatbot.departmentId }],
    });
    const otherProject = accessOf({
      type: 'user',
      subject: 'u4',
      platformRoles: [],
      grants: [{ level: 'project', id: '00000000-0000-4000-8000-000000000099', role: 'project_admin', org: chatbot.organizationId, dept: chatbot.departmentId }],
    });
    expect(await apps.appsOf(member, projectId)).toEqual([chatbot]);
    expect(await apps.app(otherProject, chatbot.id)).toBeNull();
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
