import type { CatalogSnapshot, PrincipalEntry } from '@aifactory/authz';
import { ManualClock } from '@aifactory/clock';
import { AppError } from '@aifactory/errors';
import { createLogger } from '@aifactory/logging';
import type { EdgeIdentity } from './pomerium.js';
import { PrincipalResolver, type PrincipalReadModel } from './principal-resolver.js';

const ORG = '11111111-1111-4111-8111-111111111111';
const MAX_AGE_MS = 60_000;

class FakeReadModel implements PrincipalReadModel {
  heartbeatAgeMs: number | null = 1_000;
  readonly entries = new Map<string, PrincipalEntry>();
  catalogSnapshot: CatalogSnapshot | undefined = { version: 3 } as CatalogSnapshot;

  isFresh(): boolean {
    return this.heartbeatAgeMs !== null && this.heartbeatAgeMs <= MAX_AGE_MS;
  }
  ageMs(): number | null {
    return this.heartbeatAgeMs;
  }
  principal(issuer: string, subject: string): PrincipalEntry | undefined {
    return this.entries.get(`${issuer}\n${subject}`);
  }
  catalog(): CatalogSnapshot | undefined {
    return this.catalogSnapshot;
  }
  put(entry: PrincipalEntry): void {
    this.entries.set(`${entry.issuer}\n${entry.subject}`, entry);
  }
}

function identity(overrides: Partial<EdgeIdentity> = {}): EdgeIdentity {
  return { iss: 'https://idp.test', sub: 'ada', exp: 4_000_000_000, email: 'ada@example.com', email_verified: true, name: 'Ada', groups: [], ...overrides };
}

function entryFor(who: EdgeIdentity, version: number, grants: PrincipalEntry['grants'] = []): PrincipalEntry {
  return {
    userId: `user-of-${who.sub}`,
    issuer: who.iss,
    subject: who.sub,
    email: who.email ?? null,
    emailVerified: who.email_verified,
    name: who.name ?? null,
    platformRoles: [],
    grants,
    version,
    updatedAt: '2026-01-01T00:00:00.000Z',
  };
}

const viewer = [{ level: 'organization' as const, id: ORG, role: 'viewer', organizationId: ORG, departmentId: null }];

describe('PrincipalResolver', () => {
  let model: FakeReadModel;
  let signIns: EdgeIdentity[];
  let signIn: (who: EdgeIdentity) => Promise<PrincipalEntry>;
  let resolver: PrincipalResolver;

  beforeEach(() => {
    model = new FakeReadModel();
    signIns = [];
    signIn = async (who) => entryFor(who, 1);
    resolver = new PrincipalResolver({
      model,
      signIn: (who) => {
        signIns.push(who);
        return signIn(who);
      },
      roleGroups: { platform_admin: ['ops'] },
      maxAgeMs: MAX_AGE_MS,
      clock: new ManualClock(),
      logger: createLogger({ service: 'gateway', level: 'silent' }),
    });
  });

  it('refuses every request with AUTH_READ_MODEL_STALE once the read model is older than its budget', async () => {
    model.put(entryFor(identity(), 1, viewer));
    model.heartbeatAgeMs = MAX_AGE_MS + 1;
    await expect(resolver.resolve(identity(), 'c-1')).rejects.toMatchObject({ code: 'AUTH_READ_MODEL_STALE', details: { ageMs: MAX_AGE_MS + 1, maxAgeMs: MAX_AGE_MS } });
    model.heartbeatAgeMs = null;
    await expect(resolver.resolve(identity(), 'c-2')).rejects.toMatchObject({ code: 'AUTH_READ_MODEL_STALE' });
    expect(signIns).toHaveLength(0);
  });

  it('keeps authorizing a known user from the read model without asking iam', async () => {
    model.put(entryFor(identity(), 2, viewer));
    signIn = async () => {
      throw new AppError('IAM_UNAVAILABLE', 'down');
    };
    const principal = await resolver.resolve(identity(), 'c-1');
    expect(principal).toMatchObject({ subject: 'user-of-ada', grants: [{ level: 'organization', id: ORG, role: 'viewer', org: ORG, dept: null }], registryVersion: 3 });
    expect(signIns).toHaveLength(0);
  });

  it('builds the principal once per entry version, groups and catalogue: later requests get the same object', async () => {
    const who = identity({ groups: ['ops'] });
    model.put(entryFor(who, 2, viewer));
    const first = await resolver.resolve(who, 'c-1');
    expect(first.platformRoles).toEqual(['platform_admin']);
    expect(await resolver.resolve(who, 'c-2')).toBe(first);
    model.put(entryFor(who, 3, []));
    const changed = await resolver.resolve(who, 'c-3');
    expect(changed).not.toBe(first);
    expect(changed.grants).toEqual([]);
  });

  it('signs a first-time user in through iam once, however many requests arrive together', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    signIn = async (who) => {
      await gate;
      return entryFor(who, 1);
    };
    const requests = Array.from({ length: 5 }, (_, index) => resolver.resolve(identity(), `c-${index}`));
    release();
    const principals = await Promise.all(requests);
    expect(signIns).toHaveLength(1);
    expect(new Set(principals.map((principal) => principal.subject))).toEqual(new Set(['user-of-ada']));
  });

  it("serves iam's answer until the read model catches up with its version, then the read model", async () => {
    await resolver.resolve(identity(), 'c-1');
    expect(signIns).toHaveLength(1);
    expect((await resolver.resolve(identity(), 'c-2')).grants).toEqual([]);
    model.put(entryFor(identity(), 2, viewer));
    expect((await resolver.resolve(identity(), 'c-3')).grants).toHaveLength(1);
    expect(signIns).toHaveLength(1);
  });

  it('refuses a first-time user with IAM_UNAVAILABLE while iam cannot be reached', async () => {
    signIn = async () => {
      throw new AppError('IAM_UNAVAILABLE', 'down');
    };
    await expect(resolver.resolve(identity(), 'c-1')).rejects.toMatchObject({ code: 'IAM_UNAVAILABLE' });
  });

  it('asks iam again when the assertion carries a new email, and not again for the same one', async () => {
    model.put(entryFor(identity(), 2, viewer));
    const moved = identity({ email: 'Ada@New.example.com' });
    // iam normalizes the email it stores: the gateway must not ask again on every request.
    signIn = async (who) => ({ ...entryFor(who, 3, viewer), email: 'ada@new.example.com' });
    await resolver.resolve(moved, 'c-1');
    await resolver.resolve(moved, 'c-2');
    expect(signIns.map((who) => who.email)).toEqual(['Ada@New.example.com']);
  });

  it('serves a known user whose profile update fails from the read model', async () => {
    model.put(entryFor(identity(), 2, viewer));
    signIn = async () => {
      throw new AppError('IAM_UNAVAILABLE', 'down');
    };
    const principal = await resolver.resolve(identity({ name: 'Ada L.' }), 'c-1');
    expect(principal).toMatchObject({ subject: 'user-of-ada', name: 'Ada' });
  });
});
