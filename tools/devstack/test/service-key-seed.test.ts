import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadRegistryData } from '@aifactory/contracts';
import { createTestDatabase, type TestDatabase } from '@aifactory/testing';
import { ensureDevKeys, serviceCredentialPublicKeys } from '../src/dev-keys.js';
import { runDevSeed } from '../src/seed.js';

// The dev seed registers each registered service identity's dev credential with iam, through iam's own CLI.
describe('the dev seed and service credentials', () => {
  let db: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(path.join(tmpdir(), 'aif-service-key-seed-'));
  });
  afterAll(async () => {
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it("registers the public key of every registered identity's credential, once however often it runs", async () => {
    const keys = await ensureDevKeys(dir);
    const options = { serviceCredentialFiles: keys.serviceCredentialFiles, eventSubjectPrefix: 'servicekeyseed' };
    await runDevSeed(db.layout, options);
    await runDevSeed(db.layout, options);
    const admin = await db.admin();
    const { rows } = await admin.query<{ service_name: string; kid: string }>(
      'SELECT service_name, kid FROM iam.service_identity_keys WHERE retired_at IS NULL ORDER BY service_name',
    );
    const identities = new Set(loadRegistryData().serviceIdentities.map((identity) => identity.name));
    const expected = (await serviceCredentialPublicKeys(keys.serviceCredentialFiles))
      .filter((key) => identities.has(key.service))
      .map((key) => ({ service_name: key.service, kid: key.kid }))
      .sort((a, b) => a.service_name.localeCompare(b.service_name));
    expect(expected.length).toBeGreaterThan(0);
    expect(rows).toEqual(expected);
  });
});
