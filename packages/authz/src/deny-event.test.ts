import { z } from 'zod';
import { IDS } from '../test/fixtures.js';
import { deniedAccessEnvelope, denyEventId, utcMinute, type DeniedAccess } from './deny-event.js';

const MINUTE = '2026-01-01T10:05:00.000Z';

describe('denyEventId', () => {
  it('derives the same UUIDv5 from the same four fields, every time', () => {
    const id = denyEventId('user:alice', 'gpuaas:allocation:read', 'core42:aicloud:uae-north:o:p:allocation:a1', MINUTE);

    expect(denyEventId('user:alice', 'gpuaas:allocation:read', 'core42:aicloud:uae-north:o:p:allocation:a1', MINUTE)).toBe(id);
    expect(z.uuid().safeParse(id).success).toBe(true);
    expect(id[14]).toBe('5');
    expect(['8', '9', 'a', 'b']).toContain(id[19]);
  });

  it('differs when any field differs', () => {
    const base = ['user:alice', 'gpuaas:allocation:read', 'r1', MINUTE] as const;
    const ids = new Set([
      denyEventId(...base),
      denyEventId('user:bob', base[1], base[2], base[3]),
      denyEventId(base[0], 'gpuaas:allocation:create', base[2], base[3]),
      denyEventId(base[0], base[1], 'r2', base[3]),
      denyEventId(base[0], base[1], base[2], '2026-01-01T10:06:00.000Z'),
    ]);

    expect(ids.size).toBe(5);
    expect(denyEventId('user:a\nb', 'c', 'r', MINUTE)).not.toBe(denyEventId('user:a', 'b\nc', 'r', MINUTE));
  });
});

describe('utcMinute', () => {
  it('floors to the start of the UTC minute', () => {
    expect(utcMinute(Date.parse('2026-01-01T10:05:59.999Z'))).toBe(MINUTE);
    expect(utcMinute(Date.parse('2026-01-01T10:05:00.000Z'))).toBe(MINUTE);
  });
});

describe('deniedAccessEnvelope', () => {
  const denied: DeniedAccess = {
    id: denyEventId('user:alice', 'gpuaas:allocation:read', 'r1', MINUTE),
    occurredAt: new Date('2026-01-01T10:05:12.000Z'),
    publisher: 'gpuaas',
    actor: { type: 'user', id: 'alice' },
    organizationId: IDS.O1,
    departmentId: IDS.DA,
    projectId: IDS.PA,
    correlationId: 'corr-1',
    registryVersions: { scopes: 7 },
    record: {
      action: 'gpuaas.access.deny',
      actionVersion: 1,
      outcome: 'denied',
      privileged: false,
      retentionClass: 'extended',
      principal: { type: 'user', id: 'alice' },
      scope: 'gpuaas:allocation:read',
      resource: null,
      correlationId: 'corr-1',
      reason: 'resource_not_covered',
      details: {},
    },
  };

  it('builds the audit envelope: type = subject, aggregate = the record itself', () => {
    expect(deniedAccessEnvelope(denied)).toEqual({
      id: denied.id,
      type: 'platform.audit.gpuaas.access.deny',
      version: 1,
      occurredAt: '2026-01-01T10:05:12.000Z',
      correlationId: 'corr-1',
      traceparent: null,
      actor: { type: 'user', id: 'alice' },
      organizationId: IDS.O1,
      departmentId: IDS.DA,
      projectId: IDS.PA,
      registryVersions: { scopes: 7 },
      aggregateType: 'audit',
      aggregateId: denied.id,
      aggregateVersion: 1,
      payload: denied.record,
    });
  });

  it('refuses an envelope the contract refuses', () => {
    expect(() => deniedAccessEnvelope({ ...denied, organizationId: 'not-a-uuid' })).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST_INVALID_INPUT' }),
    );
  });
});
