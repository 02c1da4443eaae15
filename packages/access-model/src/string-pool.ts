import type { AccessGrant, PrincipalEntry } from '@aifactory/authz';

/**
 * The gateway holds every principal in memory (100,000 and more), and most of
 * an entry's strings repeat across entries: the issuer, roles, levels, and the
 * ids of the organizations, departments and projects people share. JSON.parse
 * gives every occurrence its own copy; sharing one copy per distinct value
 * keeps the model lean. The pool only grows with distinct values (ids of
 * nodes that existed), which is small next to the principals themselves.
 */
export class StringPool {
  private readonly pool = new Map<string, string>();

  intern(value: string): string {
    const known = this.pool.get(value);
    if (known !== undefined) return known;
    this.pool.set(value, value);
    return value;
  }

  principal(entry: PrincipalEntry): PrincipalEntry {
    return {
      userId: entry.userId,
      issuer: this.intern(entry.issuer),
      subject: entry.subject,
      email: entry.email,
      emailVerified: entry.emailVerified,
      name: entry.name,
      platformRoles: entry.platformRoles.length === 0 ? NO_ROLES : entry.platformRoles,
      grants: entry.grants.map((grant) => this.grant(grant)),
      version: entry.version,
      updatedAt: entry.updatedAt,
    };
  }

  private grant(grant: AccessGrant): AccessGrant {
    return {
      level: this.intern(grant.level) as AccessGrant['level'],
      id: this.intern(grant.id),
      role: this.intern(grant.role),
      organizationId: this.intern(grant.organizationId),
      departmentId: grant.departmentId === null ? null : this.intern(grant.departmentId),
    };
  }
}

/** Shared by every principal without platform roles (nearly all); frozen because it is shared. */
const NO_ROLES: PrincipalEntry['platformRoles'] = Object.freeze([]) as unknown as PrincipalEntry['platformRoles'];
