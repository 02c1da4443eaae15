import { randomUUID } from 'node:crypto';
import type { ApiKeyEntry } from '@aifactory/authz';
import { ManualClock } from '@aifactory/clock';
import { loadRegistryData } from '@aifactory/contracts';
import { createLogger } from '@aifactory/logging';
import { issueApiKey } from '@aifactory/service-auth';
import { API_KEY_REFUSE_ACTION, ApiKeyRefusalAuditor, refusalEventId } from './api-key-audit.js';
import type { ApiKeyRefusal } from './api-keys.js';

const NOW_MS = Date.UTC(2026, 0, 1, 12, 0, 30);
const logger = createLogger({ service: 'api-key-audit-test', level: 'silent' });

interface Published {
  subject: string;
  body: Record<string, unknown> & { payload: Record<string, unknown> };
  msgID: string | undefined;
}

describe('audit of refused API keys', () => {
  let clock: ManualClock;
  let published: Published[];
  let auditor: ApiKeyRefusalAuditor;
  const key = issueApiKey('test');
  const entry: ApiKeyEntry = {
    keyId: key.keyId,
    serviceAccountId: randomUUID(),
    organizationId: randomUUID(),
    departmentId: randomUUID(),
    projectId: randomUUID(),
    scopes: [],
    status: 'revoked',
    expiresAt: null,
    graceUntil: null,
    hash: 'h',
    pepperVersion: 1,
    registryVersion: 1,
    version: 2,
    updatedAt: new Date(NOW_MS).toISOString(),
  };
  const refusal = (overrides: Partial<ApiKeyRefusal> = {}): ApiKeyRefusal => ({
    reason: 'unknown',
    keyId: key.keyId,
    entry: undefined,
    source: '198.51.100.7',
    correlationId: 'corr-1',
    ...overrides,
  });

  beforeEach(() => {
    clock = new ManualClock(NOW_MS);
    published = [];
    auditor = new ApiKeyRefusalAuditor({
      js: {
        publish: async (subject, data, options) => {
          published.push({ subject, body: JSON.parse(String(data)) as Published['body'], msgID: options?.msgID });
          return { stream: 'S', seq: published.length, duplicate: false, domain: '' };
        },
      } as ConstructorParameters<typeof ApiKeyRefusalAuditor>[0]['js'],
      subjectPrefix: 'pfx',
      clock,
      logger,
    });
  });

  it('is a registered audit action', () => {
    expect(loadRegistryData().auditActions.map((row) => row.id)).toContain(API_KEY_REFUSE_ACTION);
  });

  it('writes one event per key, reason and minute, with the deterministic id as msg id', async () => {
    for (let i = 0; i < 5; i++) auditor.record(refusal());
    auditor.record(refusal({ reason: 'revoked', entry }));
    clock.advance(30_000);
    auditor.record(refusal());
    await auditor.flush();
    expect(published.map((event) => [event.subject, event.body.payload.reason])).toEqual([
      ['pfx.platform.audit.gateway.api_key.refuse', 'unknown'],
      ['pfx.platform.audit.gateway.api_key.refuse', 'revoked'],
      ['pfx.platform.audit.gateway.api_key.refuse', 'unknown'],
    ]);
    expect(published[0]?.msgID).toBe(refusalEventId(key.keyId, 'unknown', '2026-01-01T12:00:00.000Z'));
    expect(published[0]?.body.id).toBe(published[0]?.msgID);
    expect(published[2]?.msgID).toBe(refusalEventId(key.keyId, 'unknown', '2026-01-01T12:01:00.000Z'));
  });

  it('coalesces the refusals of a source over its failure limit by the source, whatever key ids it tries', async () => {
    for (let i = 0; i < 5; i++) auditor.record(refusal({ reason: 'rate_limited', keyId: issueApiKey('test').keyId }));
    auditor.record(refusal({ reason: 'rate_limited', source: '203.0.113.1' }));
    await auditor.flush();
    expect(published.map((event) => (event.body.payload.details as { source: string }).source)).toEqual(['198.51.100.7', '203.0.113.1']);
  });

  it('names the organization and service account only when the secret verified, and never the secret', async () => {
    auditor.record(refusal());
    auditor.record(refusal({ reason: 'revoked', entry }));
    auditor.record(refusal({ keyId: undefined }));
    await auditor.flush();
    const [unverified, verified, malformed] = published.map((event) => event.body);
    expect(unverified).toMatchObject({ organizationId: null, departmentId: null, projectId: null, actor: { type: 'system', id: 'unauthenticated' } });
    expect(unverified?.payload).toMatchObject({ action: 'gateway.api_key.refuse', outcome: 'denied', resource: null, details: { keyId: key.keyId, source: '198.51.100.7' } });
    expect(verified).toMatchObject({ organizationId: entry.organizationId, projectId: entry.projectId, actor: { type: 'service_account', id: entry.serviceAccountId } });
    expect(verified?.payload.resource).toBe(`core42:aicloud:global:${entry.organizationId}:${entry.projectId}:api_key:${key.keyId}`);
    expect(malformed?.payload.details).toEqual({ keyId: null, source: '198.51.100.7' });
    const text = JSON.stringify(published);
    for (let at = 0; at + 16 <= key.secret.length; at += 8) expect(text).not.toContain(key.secret.slice(at, at + 16));
  });

  it('tries a failed write again at the next identical refusal', async () => {
    let fail = true;
    auditor = new ApiKeyRefusalAuditor({
      js: {
        publish: async () => {
          if (fail) throw new Error('nats down');
          published.push({ subject: 's', body: { payload: {} }, msgID: undefined });
          return { stream: 'S', seq: 1, duplicate: false, domain: '' };
        },
      } as ConstructorParameters<typeof ApiKeyRefusalAuditor>[0]['js'],
      subjectPrefix: undefined,
      clock,
      logger,
    });
    auditor.record(refusal());
    await auditor.flush();
    fail = false;
    auditor.record(refusal());
    await auditor.flush();
    expect(published).toHaveLength(1);
  });
});
