import { randomUUID } from 'node:crypto';
import { API_KEY_EVENTS, serviceIdentityUpdatedV1 } from './iam.js';
import { parseEvent } from './registry.js';

const key = {
  keyId: 'abcdefghijklmnopqrst',
  serviceAccountId: randomUUID(),
  organizationId: randomUUID(),
  departmentId: randomUUID(),
  projectId: randomUUID(),
  prefix: 'aif_dev_abcdefghijklmnopqrst',
  scopes: ['gpuaas:allocation:read'],
  labels: [{ key: 'team', value: 'ml' }],
  status: 'active',
  expiresAt: '2030-01-01T00:00:00.000Z',
  graceUntil: null,
  rotatedToKeyId: null,
  rotatedFromKeyId: null,
  revokedAt: null,
  createdBy: randomUUID(),
  creatorLeftAt: null,
  registryVersion: 12,
};

describe('the API key events', () => {
  it('keep no hash or secret even when a writer passes one', () => {
    const parsed = parseEvent({ type: API_KEY_EVENTS.created.type, version: 1, payload: { ...key, hash: 'h', secret: 's', pepperVersion: 1 } });
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.payload).toEqual(key);
  });

  it('say why an update happened', () => {
    expect(parseEvent({ type: API_KEY_EVENTS.updated.type, version: 1, payload: key })).toMatchObject({ ok: false, reason: 'invalid_payload' });
    expect(parseEvent({ type: API_KEY_EVENTS.updated.type, version: 1, payload: { ...key, change: 'rehashed' } })).toMatchObject({ ok: true });
  });

  it('publish a service identity change with its usable key ids, never a key', () => {
    const payload = { name: 'billing', status: 'disabled', scopes: [], audiences: ['iam'], kids: ['k1'], disabledReason: 'leak', change: 'disabled' };
    const parsed = parseEvent({ type: serviceIdentityUpdatedV1.type, version: 1, payload: { ...payload, publicKeyPem: 'x' } });
    expect(parsed).toMatchObject({ ok: true, payload });
  });
});
