import { randomUUID } from 'node:crypto';
import { reloadEntry, startIamFixture, uniqueSlug, type IamFixture } from './iam-fixture.js';

let fx: IamFixture;

beforeAll(async () => {
  fx = await startIamFixture();
}, 120_000);

afterAll(async () => {
  await fx?.close();
});

async function organizationWithInvitation(email: string) {
  let founder = await fx.signIn(`founder-${randomUUID()}@example.test`);
  const asFounder = fx.callerFor({ ...fx.callerOf(founder).principal, platformRoles: ['platform_admin'] });
  const organization = await fx.services.hierarchy.createOrganization(asFounder, { slug: uniqueSlug('org'), name: 'Org' });
  founder = await reloadEntry(fx, founder);
  const asAdmin = fx.callerOf(founder);
  const invitation = await fx.services.memberships.inviteMember(asAdmin, { email, level: 'organization', nodeId: organization.id, role: 'viewer' });
  return { organization, invitation, asAdmin };
}

describe('an invitation', () => {
  it('is claimed on the first sign-in with that verified email, whatever its case, keeping its id', async () => {
    const email = `Invitee-${randomUUID()}@Example.test`;
    const { organization, invitation, asAdmin } = await organizationWithInvitation(email);
    expect(invitation.email).toBe(email.toLowerCase());

    const entry = await fx.signIn(email);

    expect(entry.grants).toEqual([{ level: 'organization', id: organization.id, role: 'viewer', organizationId: organization.id, departmentId: null }]);
    const members = await fx.services.memberships.membersOf(
      asAdmin,
      { organizationId: organization.id, level: 'organization', nodeId: organization.id, departmentId: null, projectId: null },
      { first: 10, after: null },
    );
    expect(members.edges.map((edge) => edge.node.id)).toContain(invitation.id);
    const pending = await fx.services.memberships.invitationsOf(
      asAdmin,
      { organizationId: organization.id, level: 'organization', nodeId: organization.id, departmentId: null, projectId: null },
      { first: 10, after: null },
    );
    expect(pending.edges).toEqual([]);
    const { rows } = await fx.admin.query(
      `SELECT type, aggregate_version, payload FROM iam.outbox_events WHERE aggregate_id = $1 AND type = 'platform.iam.membership.changed' ORDER BY aggregate_version`,
      [invitation.id],
    );
    expect(rows.map((row) => [row.aggregate_version, row.payload.change, row.payload.status])).toEqual([
      [1, 'invited', 'pending'],
      [2, 'claimed', 'active'],
    ]);
    const { rows: claims } = await fx.admin.query(`SELECT payload FROM iam.outbox_events WHERE type = 'platform.audit.iam.invitation.claim' AND payload->'details'->>'userId' = $1`, [
      entry.userId,
    ]);
    expect(claims).toHaveLength(1);
  });

  it('is not claimed by a sign-in with another email', async () => {
    const { invitation } = await organizationWithInvitation(`invitee-${randomUUID()}@example.test`);

    const entry = await fx.signIn(`somebody-else-${randomUUID()}@example.test`);

    expect(entry.grants).toEqual([]);
    const { rowCount } = await fx.admin.query('SELECT 1 FROM iam.invitations WHERE id = $1', [invitation.id]);
    expect(rowCount).toBe(1);
  });

  it('is not claimed by an unverified email, and is once the email is verified', async () => {
    const email = `unverified-${randomUUID()}@example.test`;
    const { organization } = await organizationWithInvitation(email);
    const subject = `sub|${randomUUID()}`;

    const unverified = await fx.signIn(email, { verified: false, subject });
    expect(unverified.grants).toEqual([]);

    const verified = await fx.signIn(email, { verified: true, subject });
    expect(verified.userId).toBe(unverified.userId);
    expect(verified.version).toBeGreaterThan(unverified.version);
    expect(verified.grants.map((grant) => grant.id)).toEqual([organization.id]);
  });

  it('refuses a second invitation of the same email to the same node, and can be revoked', async () => {
    const email = `twice-${randomUUID()}@example.test`;
    const { organization, invitation, asAdmin } = await organizationWithInvitation(email);

    await expect(fx.services.memberships.inviteMember(asAdmin, { email, level: 'organization', nodeId: organization.id, role: 'viewer' })).rejects.toMatchObject({
      code: 'IAM_DUPLICATE',
    });
    const revoked = await fx.services.memberships.revokeInvitation(asAdmin, invitation.id);
    expect(revoked.id).toBe(invitation.id);
    expect((await fx.signIn(email)).grants).toEqual([]);
  });
});

describe('sign-in', () => {
  it('creates the user once and bumps the access version only when the profile changes', async () => {
    const email = `profile-${randomUUID()}@example.test`;
    const subject = `sub|${randomUUID()}`;

    const first = await fx.signIn(email, { subject });
    const again = await fx.signIn(email, { subject });
    const renamed = await fx.services.users.signIn(
      { actor: { type: 'service', id: 'gateway' }, correlationId: 'rename' },
      { issuer: first.issuer, subject, email, emailVerified: true, name: 'New Name' },
    );

    expect(again).toEqual(first);
    expect(renamed.userId).toBe(first.userId);
    expect(renamed.version).toBe(first.version + 1);
    expect(renamed.name).toBe('New Name');
  });
});
