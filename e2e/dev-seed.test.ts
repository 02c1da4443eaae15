import { runDevSeed } from '@aifactory/devstack';
import { createTestDatabase, type TestDatabase } from '@aifactory/testing';

const SNAPSHOT_QUERIES = [
  'SELECT * FROM iam.organizations ORDER BY id',
  'SELECT * FROM iam.departments ORDER BY id',
  'SELECT * FROM iam.projects ORDER BY id',
  'SELECT * FROM billing.accounts ORDER BY id',
  'SELECT id, kind, organization_id FROM billing.postings ORDER BY id',
  'SELECT organization_id, paid, promotional, reserved FROM billing.organization_funds ORDER BY organization_id',
];

describe('dev seed', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  async function snapshot() {
    const admin = await db.admin();
    const tables = [];
    for (const query of SNAPSHOT_QUERIES) tables.push((await admin.query(query)).rows);
    return tables;
  }

  it('seeds a demo organization, department, project, its accounts and opening balance, and a second run leaves the same rows', async () => {
    const first = await runDevSeed(db.layout);
    const afterFirst = await snapshot();
    // The organization's three accounts and the platform's four in its currency.
    expect(afterFirst.map((rows) => rows.length)).toEqual([1, 1, 1, 7, 1, 1]);
    expect(afterFirst[5]![0]).toEqual({ organization_id: first.organizationId, paid: '10000', promotional: '0', reserved: '0' });
    expect(afterFirst[0]![0]).toMatchObject({ id: first.organizationId, slug: 'demo', billing_currency: 'USD' });
    expect(afterFirst[2]![0]).toMatchObject({ id: first.projectId, department_id: first.departmentId, organization_id: first.organizationId });

    const second = await runDevSeed(db.layout);
    expect(second).toEqual(first);
    expect(await snapshot()).toEqual(afterFirst);
  });

  it('announces the organization it creates once, however often it runs', async () => {
    const seeded = await runDevSeed(db.layout);
    await runDevSeed(db.layout);
    const admin = await db.admin();
    const { rows } = await admin.query(
      `SELECT type, aggregate_type, aggregate_id, aggregate_version, actor, payload FROM iam.outbox_events
        WHERE aggregate_id = $1`,
      [seeded.organizationId],
    );
    expect(rows).toEqual([
      {
        type: 'platform.iam.organization.created',
        aggregate_type: 'organization',
        aggregate_id: seeded.organizationId,
        aggregate_version: 1,
        actor: { type: 'system', id: 'iam-seed' },
        payload: { id: seeded.organizationId, slug: 'demo', name: 'Demo Organization', billingCurrency: 'USD', status: 'active' },
      },
    ]);
  });
});
