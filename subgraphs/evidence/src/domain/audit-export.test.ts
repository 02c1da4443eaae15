import type { Principal } from '@aifactory/service-auth';
import { csvField } from '@aifactory/subgraph-kit';
import type { AuditEvent, AuditEventCursor } from '../data/audit-log.js';
import { AUDIT_EXPORT_COLUMNS, auditEventCsvRecord, auditExportCsv, requireAuditExportAccess } from './audit-export.js';

function auditEvent(n: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    occurredAt: new Date(Date.UTC(2025, 0, 1, 0, 0, n)),
    recordedAt: new Date(Date.UTC(2025, 0, 1, 0, 0, n, 5)),
    actorType: 'user',
    actorId: 'u1',
    action: 'organization.created',
    organizationId: null,
    departmentId: null,
    projectId: null,
    correlationId: `c${n}`,
    payload: {},
    ...overrides,
  };
}

async function collect(chunks: AsyncIterable<string>): Promise<string> {
  let text = '';
  for await (const chunk of chunks) text += chunk;
  return text;
}

describe('csvField', () => {
  it('leaves a plain value as it is', () => {
    expect(csvField('organization.created')).toBe('organization.created');
  });

  it('writes null as an empty field', () => {
    expect(csvField(null)).toBe('');
  });

  it('quotes a value with a comma', () => {
    expect(csvField('Acme, Inc.')).toBe('"Acme, Inc."');
  });

  it('quotes a value with a quote and doubles the quote', () => {
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
  });

  it('quotes a value with a line break, CR or LF', () => {
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    expect(csvField('two\r\nlines')).toBe('"two\r\nlines"');
  });

  it.each(['=1+1', '+1', '-1', '@SUM(A1)', '\tcmd'])('neutralises a formula: %j gets a leading apostrophe', (value) => {
    expect(csvField(value)).toBe(`'${value}`);
  });

  it('neutralises a formula and still quotes what needs quoting', () => {
    expect(csvField('=HYPERLINK("http://x","a,b")')).toBe(`"'=HYPERLINK(""http://x"",""a,b"")"`);
  });

  it('leaves a formula character that is not the first one alone', () => {
    expect(csvField('a=b')).toBe('a=b');
  });
});

describe('auditEventCsvRecord', () => {
  it('writes every column in the header order, payload as JSON, ending in CRLF', () => {
    const record = auditEventCsvRecord(
      auditEvent(1, { organizationId: '11111111-1111-4111-8111-111111111111', payload: { name: 'Acme, "Inc."' } }),
    );
    expect(AUDIT_EXPORT_COLUMNS).toHaveLength(11);
    expect(record).toBe(
      '00000000-0000-4000-8000-000000000001,2025-01-01T00:00:01.000Z,2025-01-01T00:00:01.005Z,user,u1,organization.created,' +
        '11111111-1111-4111-8111-111111111111,,,c1,"{""name"":""Acme, \\""Inc.\\""""}"\r\n',
    );
  });
});

describe('auditExportCsv', () => {
  it('writes the header, then every event in order across pages, each page read after the last one', async () => {
    const events = Array.from({ length: 5 }, (_, i) => auditEvent(i + 1));
    const reads: Array<AuditEventCursor | undefined> = [];
    const readPage = async (after: AuditEventCursor | undefined, limit: number) => {
      reads.push(after);
      const start = after ? events.findIndex((event) => event.id === after.id) + 1 : 0;
      return events.slice(start, start + limit);
    };
    const text = await collect(auditExportCsv(readPage, 2));
    const lines = text.split('\r\n');
    expect(lines[0]).toBe(AUDIT_EXPORT_COLUMNS.join(','));
    expect(lines.slice(1, -1).map((line) => line.split(',')[0])).toEqual(events.map((event) => event.id));
    expect(lines.at(-1)).toBe('');
    expect(reads).toEqual([undefined, { occurredAt: events[1]!.occurredAt, id: events[1]!.id }, { occurredAt: events[3]!.occurredAt, id: events[3]!.id }]);
  });

  it('writes the header alone for an empty log', async () => {
    expect(await collect(auditExportCsv(async () => [], 2))).toBe(AUDIT_EXPORT_COLUMNS.join(',') + '\r\n');
  });
});

describe('requireAuditExportAccess', () => {
  it('refuses anyone but a platform admin', () => {
    const developer: Principal = { type: 'user', subject: 'u2', platformRoles: ['internal_developer'], grants: [] };
    expect(() => requireAuditExportAccess(developer)).toThrow(expect.objectContaining({ code: 'AUTH_FORBIDDEN' }));
    expect(() => requireAuditExportAccess({ ...developer, platformRoles: ['platform_admin'] })).not.toThrow();
  });
});
