import { ManualClock } from '@aifactory/clock';
import { createLogger, type Logger } from '@aifactory/logging';
import type { Grant, Principal } from '@aifactory/service-auth';
import { Access } from '../src/access.js';
import { buildCatalogSnapshot, Catalog, type RoleRegistryRow, type ScopeRegistryRow } from '../src/catalog.js';
import { DenyAuditor } from '../src/deny-audit.js';
import { SCOPES_DIRECTIVE_SDL } from '../src/scopes-directive.js';
import type { DeniedAccess } from '../src/deny-event.js';
import type { DenySink } from '../src/deny-sinks.js';

/**
 * A small catalogue shaped like the registry (packages/contracts/registry):
 * the five membership roles, the two platform roles, and one deprecated and
 * one retired scope to exercise the lifecycle.
 */
export const SCOPE_ROWS: ScopeRegistryRow[] = [
  { id: 'platform:organization:read', product: 'platform', riskClass: 'low', lifecycle: 'active', memberVisible: true },
  { id: 'platform:project:read', product: 'platform', riskClass: 'low', lifecycle: 'active' },
  { id: 'platform:member:manage', product: 'platform', riskClass: 'high', lifecycle: 'active' },
  { id: 'platform:schema:read', product: 'platform', riskClass: 'low', lifecycle: 'active' },
  { id: 'platform:plan:manage', product: 'platform', riskClass: 'critical', lifecycle: 'active' },
  { id: 'gpuaas:allocation:read', product: 'gpuaas', riskClass: 'low', lifecycle: 'active' },
  { id: 'gpuaas:allocation:create', product: 'gpuaas', riskClass: 'medium', lifecycle: 'active' },
  { id: 'gpuaas:node:list', product: 'gpuaas', riskClass: 'low', lifecycle: 'deprecated' },
  { id: 'gpuaas:node:reboot', product: 'gpuaas', riskClass: 'high', lifecycle: 'retired' },
];

const READS = ['platform:organization:read', 'platform:project:read', 'gpuaas:allocation:read', 'gpuaas:node:list', 'gpuaas:node:reboot'];
const USES = [...READS, 'gpuaas:allocation:create'];
const ADMINS = [...USES, 'platform:member:manage'];

export const ROLE_ROWS: RoleRegistryRow[] = [
  { id: 'org_admin', kind: 'membership', levels: ['organization'], rank: 4, scopes: ADMINS },
  { id: 'department_admin', kind: 'membership', levels: ['department'], rank: 3, scopes: ADMINS },
  { id: 'project_admin', kind: 'membership', levels: ['project'], rank: 2, scopes: ADMINS },
  { id: 'project_member', kind: 'membership', levels: ['project'], rank: 1, scopes: USES },
  { id: 'viewer', kind: 'membership', levels: ['organization', 'department', 'project'], rank: 0, scopes: READS },
  { id: 'platform_admin', kind: 'platform', levels: [], rank: 5, scopes: ['*'] },
  { id: 'internal_developer', kind: 'platform', levels: [], rank: 0, scopes: ['platform:schema:read'] },
];

export const PUBLISHED_AT = '2026-01-01T00:00:00.000Z';

export function testCatalog(): Catalog {
  return new Catalog(
    buildCatalogSnapshot({ scopes: SCOPE_ROWS, roles: ROLE_ROWS, registryVersions: { scopes: 7, roles: 3 }, publishedAt: PUBLISHED_AT }),
  );
}

/**
 * A fixed hierarchy: organization O1 with departments DA (projects PA, PA2)
 * and DB (project PB); organization O2 with department DC (project PC).
 */
export const IDS = {
  O1: '11111111-1111-4111-8111-111111111111',
  O2: '22222222-2222-4222-8222-222222222222',
  DA: 'aaaaaaaa-0000-4000-8000-00000000000a',
  DB: 'bbbbbbbb-0000-4000-8000-00000000000b',
  DC: 'cccccccc-0000-4000-8000-00000000000c',
  PA: 'aaaaaaaa-1111-4111-8111-00000000000a',
  PA2: 'aaaaaaaa-2222-4222-8222-00000000000a',
  PB: 'bbbbbbbb-1111-4111-8111-00000000000b',
  PC: 'cccccccc-1111-4111-8111-00000000000c',
} as const;

export const ORG_OF = { DA: IDS.O1, DB: IDS.O1, DC: IDS.O2 } as const;

export const RESOURCES = {
  O1: { organizationId: IDS.O1, departmentId: null, projectId: null },
  O2: { organizationId: IDS.O2, departmentId: null, projectId: null },
  DA: { organizationId: IDS.O1, departmentId: IDS.DA, projectId: null },
  DB: { organizationId: IDS.O1, departmentId: IDS.DB, projectId: null },
  DC: { organizationId: IDS.O2, departmentId: IDS.DC, projectId: null },
  PA: { organizationId: IDS.O1, departmentId: IDS.DA, projectId: IDS.PA },
  PA2: { organizationId: IDS.O1, departmentId: IDS.DA, projectId: IDS.PA2 },
  PB: { organizationId: IDS.O1, departmentId: IDS.DB, projectId: IDS.PB },
  PC: { organizationId: IDS.O2, departmentId: IDS.DC, projectId: IDS.PC },
} as const;

/** Grants as the internal JWT carries them, with `org` and `dept`. */
export const grantAt = {
  organization: (role: string, org: string = IDS.O1): Grant => ({ level: 'organization', id: org, role, org, dept: null }),
  department: (role: string, dept: keyof typeof ORG_OF = 'DA'): Grant => ({
    level: 'department',
    id: IDS[dept],
    role,
    org: ORG_OF[dept],
    dept: IDS[dept],
  }),
  project: (role: string, project: 'PA' | 'PA2' | 'PB' | 'PC' = 'PA'): Grant => ({
    level: 'project',
    id: IDS[project],
    role,
    org: RESOURCES[project].organizationId,
    dept: RESOURCES[project].departmentId,
  }),
};

export function user(grants: Grant[], platformRoles: Principal['platformRoles'] = []): Principal {
  return { type: 'user', subject: 'https://idp.test|alice', platformRoles, grants };
}

export function apiKey(projectId: string, scopes: string[], organizationId?: string): Principal {
  const key: Principal = { type: 'service_account', subject: 'sa-1', platformRoles: [], grants: [], apiKeyId: 'key-1', projectId, scopes };
  if (organizationId !== undefined) key.organizationId = organizationId;
  return key;
}

/** A platform service's token principal (issue 15, Service identity). */
export function service(scopes: string[]): Principal {
  return { type: 'service', subject: 'tokenfactory', platformRoles: [], grants: [], scopes };
}

/** A sink that keeps what it is given; `fail` makes the next writes reject. */
export function recordingSink(): DenySink & { written: DeniedAccess[]; fail: Error | undefined } {
  const sink = {
    written: [] as DeniedAccess[],
    fail: undefined as Error | undefined,
    async write(denied: DeniedAccess): Promise<void> {
      if (sink.fail) throw sink.fail;
      sink.written.push(denied);
    },
  };
  return sink;
}

export function quietLogger(): Logger {
  return createLogger({ service: 'authz-test', level: 'silent' });
}

/** A fresh per-request Access with its own auditor, recording into `sink`. */
export function accessFor(principal: Principal, options: { sink?: DenySink; onDeprecated?: (scope: string) => void } = {}): {
  access: Access;
  auditor: DenyAuditor;
} {
  const auditor = new DenyAuditor({ publisher: 'gpuaas', sink: options.sink ?? recordingSink(), logger: quietLogger(), clock: new ManualClock() });
  const access = new Access({
    principal,
    catalog: testCatalog(),
    correlationId: 'corr-test-1',
    denies: auditor,
    ...(options.onDeprecated ? { onDeprecated: options.onDeprecated } : {}),
  });
  return { access, auditor };
}

/** The header every subgraph adds (plan-iam.md, @scopes in subgraphs). */
export const SUBGRAPH_HEADER = `
  extend schema
    @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key", "@composeDirective"])
    @link(url: "https://aifactory.dev/authz/v1.0", import: ["@scopes"])
    @composeDirective(name: "@scopes")
  ${SCOPES_DIRECTIVE_SDL}
`;
