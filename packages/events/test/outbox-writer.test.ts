import { randomUUID } from 'node:crypto';
import { AppError } from '@aifactory/errors';
import { runWithCorrelationId } from '@aifactory/logging';
import { createTestDatabase, type TestDatabase } from '@aifactory/testing';
import pg from 'pg';
import { pruneOutbox, writeOutboxEvent } from '../src/index.js';
import { organizationEvent, waitFor } from './support.js';

let db: TestDatabase;
let pool: pg.Pool;
let admin: pg.Client;

beforeAll(async () => {
  db = await createTestDatabase({ subgraphs: ['iam'] });
  pool = new pg.Pool({ connectionString: db.appUrl('iam'), max: 2 });
  admin = await db.admin();
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

async function inTransaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

describe('writeOutboxEvent', () => {
  it('stores the whole envelope with the contract subject and aggregate type, and the request correlation id', async () => {
    const organizationId = randomUUID();
    const input = { ...organizationEvent(organizationId, 2), correlationId: undefined };

    const event = await runWithCorrelationId('corr-from-request', () => inTransaction((tx) => writeOutboxEvent(tx, input)));

    const { rows } = await admin.query('SELECT * FROM iam.outbox_events WHERE id = $1', [event.id]);
    expect(rows).toEqual([
      expect.objectContaining({
        type: 'platform.iam.organization.updated',
        version: 1,
        subject: 'platform.iam.organization.updated',
        correlation_id: 'corr-from-request',
        aggregate_type: 'organization',
        aggregate_id: organizationId,
        aggregate_version: 2,
        organization_id: organizationId,
        actor: { type: 'user', id: 'user-1' },
        payload: { id: organizationId, slug: `org-${organizationId.slice(0, 8)}`, name: 'Org v2', billingCurrency: 'EUR', status: 'active' },
        status: 'pending',
        attempts: 0,
      }),
    ]);
    expect(event).toMatchObject({ aggregateType: 'organization', correlationId: 'corr-from-request', traceparent: null });
  });

  it.each([
    ['an unregistered type', { type: 'platform.iam.organization.renamed' }, 'unknown_type'],
    ['an unregistered version', { version: 2 }, 'unknown_version'],
    ['a payload that breaks the contract', { payload: { id: 'not-a-uuid', slug: 'x' } }, 'invalid_payload'],
  ])('refuses %s with BAD_REQUEST_INVALID_INPUT and writes nothing', async (_what, change, reason) => {
    const organizationId = randomUUID();

    const refusal = writeOutboxEvent(pool, { ...organizationEvent(organizationId, 1), ...change }, { schema: 'iam' });

    await expect(refusal).rejects.toBeInstanceOf(AppError);
    await expect(refusal).rejects.toMatchObject({ code: 'BAD_REQUEST_INVALID_INPUT', details: expect.objectContaining({ reason }) });
    const { rowCount } = await admin.query('SELECT 1 FROM iam.outbox_events WHERE aggregate_id = $1', [organizationId]);
    expect(rowCount).toBe(0);
  });

  it("wakes the schema's relay at commit, not before", async () => {
    const listener = await db.admin();
    const notifications: string[] = [];
    listener.on('notification', (message) => notifications.push(message.channel));
    await listener.query('LISTEN outbox_iam');
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await writeOutboxEvent(client, organizationEvent(randomUUID(), 1));
      await listener.query('SELECT 1');
      expect(notifications).toEqual([]);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    await waitFor(async () => notifications.length > 0, 'the notification');
    expect(notifications).toEqual(['outbox_iam']);
  });

  it('leaves nothing behind when the transaction rolls back', async () => {
    const organizationId = randomUUID();
    await expect(
      inTransaction(async (tx) => {
        await writeOutboxEvent(tx, organizationEvent(organizationId, 1));
        throw new Error('the domain change failed');
      }),
    ).rejects.toThrow('the domain change failed');
    const { rowCount } = await admin.query('SELECT 1 FROM iam.outbox_events WHERE aggregate_id = $1', [organizationId]);
    expect(rowCount).toBe(0);
  });
});

describe('pruneOutbox', () => {
  it('deletes only published events older than the retention', async () => {
    const [oldPublished, recentPublished, oldPending, oldFailed] = await Promise.all(
      [1, 2, 3, 4].map(async () => (await writeOutboxEvent(pool, organizationEvent(randomUUID(), 1), { schema: 'iam' })).id),
    );
    await admin.query(
      `UPDATE iam.outbox_events SET status = 'published', published_at = now() - interval '8 days' WHERE id = $1;`,
      [oldPublished],
    );
    await admin.query(`UPDATE iam.outbox_events SET status = 'published', published_at = now() - interval '1 day' WHERE id = $1`, [
      recentPublished,
    ]);
    await admin.query(`UPDATE iam.outbox_events SET occurred_at = now() - interval '9 days' WHERE id = $1`, [oldPending]);
    await admin.query(`UPDATE iam.outbox_events SET status = 'failed', occurred_at = now() - interval '9 days' WHERE id = $1`, [oldFailed]);

    const deleted = await pruneOutbox(pool, 'iam', { olderThanMs: 7 * 24 * 60 * 60 * 1000, batchSize: 1 });

    expect(deleted).toBe(1);
    const { rows } = await admin.query<{ id: string }>('SELECT id FROM iam.outbox_events WHERE id = ANY($1::uuid[])', [
      [oldPublished, recentPublished, oldPending, oldFailed],
    ]);
    expect(new Set(rows.map((row) => row.id))).toEqual(new Set([recentPublished, oldPending, oldFailed]));
  });
});
