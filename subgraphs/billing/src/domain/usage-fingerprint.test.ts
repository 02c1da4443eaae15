import { randomUUID } from 'node:crypto';
import type { EventEnvelope } from '@aifactory/contracts';
import { canonicalJson, usageFingerprint } from './usage-fingerprint.js';

const envelope: EventEnvelope = {
  id: randomUUID(),
  type: 'tokenfactory.usage.recorded',
  version: 1,
  occurredAt: '2026-11-24T10:00:00.000Z',
  correlationId: 'corr-1',
  traceparent: null,
  actor: { type: 'service_account', id: 'sa-1' },
  organizationId: randomUUID(),
  departmentId: randomUUID(),
  projectId: randomUUID(),
  registryVersions: {},
  aggregateType: 'usage_record',
  aggregateId: randomUUID(),
  aggregateVersion: 1,
  payload: { usageId: randomUUID(), unit: 'token_output', unitVersion: 1, quantity: '12', occurredAt: '2026-11-24T10:00:00.000Z' },
};

describe('usage fingerprint', () => {
  it('ignores how the event travelled: correlation id, trace, publish time and key order', () => {
    const republished = {
      ...envelope,
      correlationId: 'corr-2',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      occurredAt: '2026-11-24T11:00:00.000Z',
      registryVersions: { usage_units: 3 },
      payload: Object.fromEntries(Object.entries(envelope.payload).reverse()),
    };
    expect(usageFingerprint(republished)).toBe(usageFingerprint(envelope));
  });

  it('changes with anything that says what was used, by whom', () => {
    const base = usageFingerprint(envelope);
    expect(usageFingerprint({ ...envelope, payload: { ...envelope.payload, quantity: '13' } })).not.toBe(base);
    expect(usageFingerprint({ ...envelope, projectId: randomUUID() })).not.toBe(base);
    expect(usageFingerprint({ ...envelope, actor: { type: 'user', id: 'sa-1' } })).not.toBe(base);
    expect(usageFingerprint({ ...envelope, aggregateVersion: 2 })).not.toBe(base);
    expect(usageFingerprint({ ...envelope, type: 'tokenfactory.usage.other' })).not.toBe(base);
  });

  it('writes JSON with sorted keys at every depth', () => {
    expect(canonicalJson({ b: [{ d: 1, c: null }], a: 'x', e: undefined })).toBe('{"a":"x","b":[{"c":null,"d":1}]}');
  });
});
