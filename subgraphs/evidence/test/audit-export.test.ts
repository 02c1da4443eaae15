import { parseConfig } from '@aifactory/config';
import { createLogger } from '@aifactory/logging';
import { InternalTokenSigner, loadSigningKey, type Principal } from '@aifactory/service-auth';
import type { StartedService } from '@aifactory/subgraph-kit';
import { createTestDatabase, deleteEventStreams, tempKeyDir, uniqueEventSubjectPrefix, type TempKeys, type TestDatabase } from '@aifactory/testing';
import { evidenceConfigSchema } from '../src/config.js';
import { AUDIT_EXPORT_COLUMNS, AUDIT_EXPORT_PAGE_SIZE } from '../src/domain/audit-export.js';
import { startEvidenceSubgraph } from '../src/server.js';

const admin: Principal = { type: 'user', subject: 'admin-1', platformRoles: ['platform_admin'], grants: [] };
const developer: Principal = { type: 'user', subject: 'dev-1', platformRoles: ['internal_developer'], grants: [] };
// More than two pages, so the export must page through the log rather than read it once.
const EVENTS = 2 * AUDIT_EXPORT_PAGE_SIZE + 234;

describe('GET /api/audit-events.csv', () => {
  let db: TestDatabase;
  let keys: TempKeys;
  let evidence: StartedService;
  let signer: InternalTokenSigner;
  // The subgraph declares its event streams at start: under this run's prefix, deleted afterwards.
  const eventSubjectPrefix = uniqueEventSubjectPrefix();

  beforeAll(async () => {
    db = await createTestDatabase({ subgraphs: ['evidence'] });
    keys = await tempKeyDir();
    const internal = await keys.ed25519('internal');
    signer = new InternalTokenSigner({ issuer: 'gateway', key: await loadSigningKey(internal.privateKeyFile) });
    const config = parseConfig(evidenceConfigSchema, {
      PORT: '0',
      LOG_LEVEL: 'silent',
      DATABASE_URL: db.appUrl('evidence'),
      DB_POOL_SIZE: '2',
      INTERNAL_JWT_PUBLIC_KEY_FILES: internal.publicKeyFile,
      SHUTDOWN_GRACE_MS: '1000',
      EVENT_SUBJECT_PREFIX: eventSubjectPrefix,
    });
    evidence = await startEvidenceSubgraph(config, createLogger({ service: 'evidence', level: 'silent' }));

    const pg = await db.admin();
    // Three events share each timestamp, so the order must fall back to the id, as the paging cursor does.
    await pg.query(
      `INSERT INTO evidence.audit_events (occurred_at, actor_type, actor_id, action, correlation_id, payload)
       SELECT timestamptz '2025-01-01T00:00:00Z' + (i / 3) * interval '1 second', 'user', 'u1', 'organization.created',
              'c' || i, jsonb_build_object('n', i, 'name', 'Acme, "Inc."')
       FROM generate_series(1, $1::int) AS i`,
      [EVENTS],
    );
  });

  afterAll(async () => {
    await evidence?.close();
    await db?.drop();
    await keys?.cleanup();
    await deleteEventStreams(eventSubjectPrefix);
  });

  const exportAs = async (principal?: Principal) => {
    const headers: Record<string, string> = {};
    if (principal) {
      headers.authorization = `Bearer ${await signer.mint({ audience: 'evidence', principal, correlationId: 'audit-export-0001' })}`;
    }
    return fetch(`${evidence.url}/api/audit-events.csv`, { headers });
  };

  it('refuses a call without an internal token with 401', async () => {
    const res = await exportAs();

    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INTERNAL_AUTH_UNAUTHENTICATED');
  });

  it('refuses anyone but a platform admin with 403', async () => {
    const res = await exportAs(developer);

    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('AUTH_FORBIDDEN');
  });

  it('streams every audit event as CSV, header first, oldest first', async () => {
    const res = await exportAs(admin);

    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="audit-events.csv"');
    const lines = (await res.text()).split('\r\n');
    expect(lines[0]).toBe(AUDIT_EXPORT_COLUMNS.join(','));
    expect(lines.at(-1)).toBe('');
    const records = lines.slice(1, -1);
    expect(records).toHaveLength(EVENTS);

    const pg = await db.admin();
    const expected = await pg.query<{ id: string }>('SELECT id FROM evidence.audit_events ORDER BY occurred_at, id');
    expect(records.map((record) => record.split(',', 1)[0])).toEqual(expected.rows.map((row) => row.id));
    expect(records.find((record) => record.includes(',c1,'))).toMatch(/,organization\.created,,,,c1,"\{""n"":1,""name"":""Acme, \\""Inc\.\\""""\}"$/);
  });
});
