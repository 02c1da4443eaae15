import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { writeOutboxEvent } from '@aifactory/events';
import { createTestDatabase, type TestDatabase } from '@aifactory/testing';
import { UsageEvents } from '../src/index.js';

/** A product writes its usage through its own outbox, in the transaction of the change the usage belongs to. */
describe("usage through a product's outbox", () => {
  let db: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase({ subgraphs: ['gpuaas'] });
    pool = new pg.Pool({ connectionString: db.appUrl('gpuaas'), max: 2 });
  });

  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it('stores opened and closed as the interval aggregate, in the envelope the relay publishes, and a repeat once', async () => {
    const usage = new UsageEvents('gpuaas');
    const scope = { organizationId: randomUUID(), departmentId: randomUUID(), projectId: randomUUID(), actor: { type: 'user' as const, id: 'u-1' }, correlationId: 'corr-alloc-1' };
    const interval = { usageId: randomUUID(), resourceType: 'gpu_allocation', resourceId: 'alloc-1', unit: 'gpu_hour', unitVersion: 1, openedAt: new Date('2026-11-24T10:00:00Z') };
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await writeOutboxEvent(client, usage.opened(scope, interval));
      await writeOutboxEvent(client, usage.closed(scope, interval, new Date('2026-11-24T11:15:00Z')));
      await client.query('COMMIT');
      // A retried emission of the same usage carries the same event id: the outbox keeps one.
      await writeOutboxEvent(client, usage.opened(scope, interval), { onConflict: 'ignore' });
    } finally {
      client.release();
    }
    const { rows } = await pool.query(
      `SELECT type, subject, aggregate_type, aggregate_id, aggregate_version, organization_id, project_id, correlation_id, payload
       FROM outbox_events WHERE aggregate_id = $1 ORDER BY aggregate_version`,
      [interval.usageId],
    );
    expect(rows).toEqual([
      expect.objectContaining({ type: 'gpuaas.usage.opened', subject: 'gpuaas.usage.opened', aggregate_type: 'usage_interval', aggregate_version: 1, organization_id: scope.organizationId, project_id: scope.projectId, correlation_id: 'corr-alloc-1' }),
      expect.objectContaining({ type: 'gpuaas.usage.closed', aggregate_version: 2, payload: expect.objectContaining({ closedAt: '2026-11-24T11:15:00.000Z', unitVersion: 1 }) }),
    ]);
  });
});
