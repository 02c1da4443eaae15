import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { PrincipalEntry } from '@aifactory/authz';
import { systemClock } from '@aifactory/clock';
import { createLogger } from '@aifactory/logging';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { HEARTBEAT_KEY, deleteAccessBucket, openAccessBucket, principalKey } from './bucket.js';
import { AccessModelReader } from './reader.js';

export interface ColdLoadMeasurement {
  count: number;
  /** From start() to every initial value loaded. */
  loadMs: number;
  /** Heap held by the loaded reader; meaningful only when node runs with --expose-gc. */
  heapDeltaBytes: number;
}

/**
 * The gateway's cold start with `count` principals (issue 14 asks for
 * 100,000): seeds a throwaway bucket on `nc`, loads it into a fresh reader,
 * and deletes the bucket again. Run it under `node --expose-gc` so the heap
 * figure is not noise from garbage not yet collected.
 */
export async function measureColdLoad(nc: NatsConnection, count: number): Promise<ColdLoadMeasurement> {
  const subjectPrefix = `bench${randomBytes(5).toString('hex')}`;
  try {
    const kv = await openAccessBucket(nc, { subjectPrefix, create: true });
    await seedPrincipals(kv, count);
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
    if (reader.stats().principals !== count) throw new RangeError(`loaded ${reader.stats().principals} of ${count} principals`);
    await reader.stop();
    return { count, loadMs, heapDeltaBytes };
  } finally {
    await deleteAccessBucket(nc, subjectPrefix);
  }
}

/** Bounded so seeding is fast without flooding JetStream with unacknowledged publishes. */
const SEED_IN_FLIGHT = 500;

async function seedPrincipals(kv: KV, count: number): Promise<void> {
  const organizations = Array.from({ length: Math.max(1, Math.ceil(count / 50)) }, () => randomUUID());
  for (let start = 0; start < count; start += SEED_IN_FLIGHT) {
    const batch: Promise<number>[] = [];
    for (let i = start; i < Math.min(count, start + SEED_IN_FLIGHT); i++) {
      const entry = samplePrincipal(i, organizations[i % organizations.length] ?? randomUUID());
      batch.push(kv.put(principalKey(entry.issuer, entry.subject), JSON.stringify(entry)));
    }
    await Promise.all(batch);
  }
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
