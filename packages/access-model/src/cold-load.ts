import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { ApiKeyEntry, PrincipalEntry } from '@aifactory/authz';
import { systemClock } from '@aifactory/clock';
import { createLogger } from '@aifactory/logging';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { HEARTBEAT_KEY, apiKeyKey, deleteAccessBucket, openAccessBucket, principalKey } from './bucket.js';
import { AccessModelReader } from './reader.js';

/** What the throwaway bucket is filled with: people (issue 14) or API keys (issue 15). */
export type ColdLoadKind = 'principals' | 'apiKeys';

export interface ColdLoadMeasurement {
  kind: ColdLoadKind;
  count: number;
  /** From start() to every initial value loaded. */
  loadMs: number;
  /** Heap held by the loaded reader; meaningful only when node runs with --expose-gc. */
  heapDeltaBytes: number;
}

/**
 * The gateway's cold start with `count` principals or API keys (issues 14
 * and 15 ask for 100,000 of each): seeds a throwaway bucket on `nc`, loads it into a fresh reader,
 * and deletes the bucket again. Run it under `node --expose-gc` so the heap
 * figure is not noise from garbage not yet collected.
 */
export async function measureColdLoad(nc: NatsConnection, count: number, kind: ColdLoadKind = 'principals'): Promise<ColdLoadMeasurement> {
  const subjectPrefix = `bench${randomBytes(5).toString('hex')}`;
  try {
    const kv = await openAccessBucket(nc, { subjectPrefix, create: true });
    await seed(kv, count, kind === 'principals' ? principalRecords(count) : apiKeyRecords());
    await kv.put(HEARTBEAT_KEY, JSON.stringify({ at: new Date().toISOString(), catalogVersion: 1, policyVersion: 1 }));
    const heapBefore = settledHeap();
    const reader = new AccessModelReader({
      nc,
      subjectPrefix,
      clock: systemClock,
      logger: createLogger({ service: 'access-model-bench', level: 'warn' }),
      maxAgeMs: 60_000,
    });
    const began = performance.now();
    await reader.start();
    await reader.whenReady();
    const loadMs = Math.round(performance.now() - began);
    const heapDeltaBytes = settledHeap() - heapBefore;
    const loaded = kind === 'principals' ? reader.stats().principals : reader.stats().apiKeys;
    if (loaded !== count) throw new RangeError(`loaded ${loaded} of ${count} ${kind}`);
    await reader.stop();
    return { kind, count, loadMs, heapDeltaBytes };
  } finally {
    await deleteAccessBucket(nc, subjectPrefix);
  }
}

/** Bounded so seeding is fast without flooding JetStream with unacknowledged publishes. */
const SEED_IN_FLIGHT = 500;

/** The i-th record to seed: its KV key and value. */
type RecordAt = (index: number) => [key: string, value: unknown];

async function seed(kv: KV, count: number, recordAt: RecordAt): Promise<void> {
  for (let start = 0; start < count; start += SEED_IN_FLIGHT) {
    const batch: Promise<number>[] = [];
    for (let i = start; i < Math.min(count, start + SEED_IN_FLIGHT); i++) {
      const [key, value] = recordAt(i);
      batch.push(kv.put(key, JSON.stringify(value)));
    }
    await Promise.all(batch);
  }
}

function principalRecords(count: number): RecordAt {
  const organizations = Array.from({ length: Math.max(1, Math.ceil(count / 50)) }, () => randomUUID());
  return (i) => {
    const entry = samplePrincipal(i, organizations[i % organizations.length] ?? randomUUID());
    return [principalKey(entry.issuer, entry.subject), entry];
  };
}

/** Keys spread over projects of 10 keys each, three scopes, an expiry, as IAM would publish them. */
function apiKeyRecords(): RecordAt {
  const updatedAt = new Date().toISOString();
  const expiresAt = new Date(Date.now() + 90 * 86_400_000).toISOString();
  return (i) => {
    const keyId = `k${String(i).padStart(19, '0')}`.replace(/[0-9]/g, (digit) => 'abcdefghij'[Number(digit)]!);
    const entry: ApiKeyEntry = {
      keyId,
      serviceAccountId: randomUUID(),
      organizationId: randomUUID(),
      departmentId: randomUUID(),
      projectId: randomUUID(),
      scopes: ['gpuaas:allocation:read', 'gpuaas:allocation:create', 'tokenfactory:inference:invoke'],
      status: 'active',
      expiresAt,
      graceUntil: null,
      hash: randomBytes(32).toString('base64url'),
      pepperVersion: 1,
      registryVersion: 7,
      version: 1,
      updatedAt,
    };
    return [apiKeyKey(keyId), entry];
  };
}

/** A typical member: a project membership and an organization viewer grant, as IAM would publish them. */
function samplePrincipal(index: number, organizationId: string): PrincipalEntry {
  const departmentId = `${organizationId.slice(0, 24)}${String(index % 5).padStart(12, '0')}`;
  const projectId = `${organizationId.slice(0, 24)}${String(100 + (index % 20)).padStart(12, '0')}`;
  return {
    userId: randomUUID(),
    issuer: 'https://id.aifactory.example/realms/aifactory',
    subject: randomUUID(),
    email: `user${index}@example.com`,
    emailVerified: true,
    name: `User ${index}`,
    platformRoles: [],
    grants: [
      { level: 'organization', id: organizationId, role: 'viewer', organizationId, departmentId: null },
      { level: 'project', id: projectId, role: 'project_member', organizationId, departmentId },
    ],
    version: 1,
    updatedAt: new Date().toISOString(),
  };
}

function settledHeap(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  return process.memoryUsage().heapUsed;
}
