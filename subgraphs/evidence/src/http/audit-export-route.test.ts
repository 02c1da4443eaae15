import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AccessModelReader } from '@aifactory/access-model';
import type { Principal } from '@aifactory/service-auth';
import type { SubgraphHttpRoute } from '@aifactory/subgraph-kit';
import type { AuditEvent } from '../data/audit-log.js';
import { auditExportRoute } from './audit-export-route.js';

const admin: Principal = { type: 'user', subject: 'admin-1', platformRoles: ['platform_admin'], grants: [] };
type RouteContext = Parameters<SubgraphHttpRoute['handle']>[0];

describe('auditExportRoute', () => {
  let server: Server;

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('reads the next page only as the client takes the last one, and stops reading when the client goes away', async () => {
    let reads = 0;
    // An endless log: only backpressure and noticing the client left can end this export.
    const route = auditExportRoute(async (_after, limit) => {
      reads += 1;
      return Array.from({ length: limit }, (_, i): AuditEvent => ({
        id: `00000000-0000-4000-8000-${String(reads * limit + i).padStart(12, '0')}`,
        occurredAt: new Date(reads * 1000),
        recordedAt: new Date(reads * 1000),
        actorType: 'user',
        actorId: 'u1',
        action: 'organization.updated',
        organizationId: null,
        departmentId: null,
        projectId: null,
        correlationId: 'c1',
        payload: { description: 'x'.repeat(1000) },
      }));
    });
    let handled!: Promise<void>;
    server = createServer((req, res) => {
      const ctx: RouteContext = {
        req,
        res,
        url: new URL(req.url ?? '/', 'http://localhost'),
        correlationId: 'audit-export-0001',
        route: 'GET /api/audit-events.csv',
        call: { principal: admin, issuer: 'gateway', correlationId: 'audit-export-0001', actor: undefined },
        // The export reads no policy.
        accessModel: {} as AccessModelReader,
      };
      handled = route.handle(ctx);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;

    await new Promise<void>((resolve, reject) => {
      const client = get(`http://127.0.0.1:${port}/api/audit-events.csv`, (res) => {
        res.once('data', () => {
          client.destroy();
          resolve();
        });
      });
      client.on('error', (error) => (client.destroyed ? undefined : reject(error)));
    });
    await handled;

    expect(reads).toBeLessThan(10);
  });
});
