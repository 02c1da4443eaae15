import { principalFromIdentity } from './principal.js';

describe('principalFromIdentity', () => {
  const roleGroups = { platform_admin: ['ops-admins'], internal_developer: ['developers', 'sre'] };

  it('maps groups to platform roles through the configured mapping', () => {
    const principal = principalFromIdentity({ iss: 'idp', exp: 4_000_000_000, sub: 'u1', email: 'a@example.com', groups: ['sre', 'ops-admins'] }, roleGroups);
    expect(principal).toEqual({
      type: 'user',
      subject: 'u1',
      email: 'a@example.com',
      platformRoles: ['internal_developer', 'platform_admin'],
      grants: [],
    });
  });

  it('gives no platform role to a user in no mapped group', () => {
    expect(principalFromIdentity({ iss: 'idp', exp: 4_000_000_000, sub: 'u2', groups: ['everyone'] }, roleGroups).platformRoles).toEqual([]);
  });
});
