import type { ApiKeyWithProject } from '../data/api-keys.js';
import { apiKeyEntryOf, apiKeyStatusAt } from './credential-entries.js';

const now = new Date('2026-03-01T12:00:00.000Z');
const later = new Date(now.getTime() + 60_000);
const earlier = new Date(now.getTime() - 60_000);

function key(change: Partial<ApiKeyWithProject> = {}): ApiKeyWithProject {
  return {
    id: 'abcdefghijklmnopqrst',
    serviceAccountId: 'sa',
    organizationId: 'o',
    departmentId: 'd',
    projectId: 'p',
    prefix: 'aif_dev_abcdefghijklmnopqrst',
    fingerprint: 'f',
    hash: 'h',
    pepperVersion: 1,
    scopes: ['gpuaas:node:read'],
    labels: [],
    expiresAt: later,
    status: 'active',
    revokedAt: null,
    revokedBy: null,
    revokeReason: null,
    graceUntil: null,
    rotatedToKeyId: null,
    rotatedFromKeyId: null,
    createdBy: null,
    creatorLeftAt: null,
    lastUsedAt: null,
    registryVersion: 7,
    version: 3,
    createdAt: earlier,
    updatedAt: now,
    project: { status: 'active' },
    ...change,
  };
}

describe("an API key's status, judged at read time", () => {
  it('is revoked before anything else, then suspended with its project, then rotated out, expired, rotating', () => {
    expect(apiKeyStatusAt(key(), now)).toBe('active');
    expect(apiKeyStatusAt(key({ graceUntil: later, rotatedToKeyId: 'x' }), now)).toBe('rotating');
    expect(apiKeyStatusAt(key({ graceUntil: earlier, rotatedToKeyId: 'x' }), now)).toBe('rotated_out');
    expect(apiKeyStatusAt(key({ expiresAt: earlier }), now)).toBe('expired');
    expect(apiKeyStatusAt(key({ expiresAt: null }), now)).toBe('active');
    expect(apiKeyStatusAt(key({ project: { status: 'archived' }, expiresAt: earlier }), now)).toBe('suspended');
    expect(apiKeyStatusAt(key({ status: 'revoked', revokedAt: earlier, project: { status: 'archived' } }), now)).toBe('revoked');
  });
});

describe("an API key's read-model entry", () => {
  it('carries the hash and its pepper version, the project suspension, and the row version', () => {
    expect(apiKeyEntryOf(key({ project: { status: 'archived' } }))).toMatchObject({
      keyId: 'abcdefghijklmnopqrst',
      status: 'project_archived',
      hash: 'h',
      pepperVersion: 1,
      registryVersion: 7,
      version: 3,
      expiresAt: later.toISOString(),
    });
    expect(apiKeyEntryOf(key({ status: 'revoked', revokedAt: now, project: { status: 'archived' } })).status).toBe('revoked');
  });
});
