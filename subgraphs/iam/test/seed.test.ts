import { seedDemoHierarchy } from '../src/seed/demo.js';
import { startIamFixture, type IamFixture } from './iam-fixture.js';

let fx: IamFixture;

beforeAll(async () => {
  fx = await startIamFixture();
}, 120_000);

afterAll(async () => {
  await fx?.close();
});

describe('the demo seed', () => {
  it('makes the demo admin org_admin of the demo organization, and a second run changes nothing', async () => {
    const admin = { issuer: 'https://authenticate.aifactory.localhost', email: 'admin@aifactory.localhost' };

    const first = await seedDemoHierarchy(fx.services, admin);
    const second = await seedDemoHierarchy(fx.services, admin);

    expect(second).toEqual(first);
    const memberships = await fx.services.accessStore.membershipsOfUser(first.adminUserId);
    expect(memberships.map((m) => [m.level, m.nodeId, m.role])).toEqual([['organization', first.organizationId, 'org_admin']]);
    const { rows } = await fx.admin.query(`SELECT count(*)::int AS n FROM iam.outbox_events WHERE type = 'platform.iam.organization.created' AND aggregate_id = $1`, [
      first.organizationId,
    ]);
    expect(rows[0].n).toBe(1);
  });
});
