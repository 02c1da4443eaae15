import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  formatPublicKeyBundle,
  InternalTokenSigner,
  InternalTokenVerifier,
  keyIdOf,
  loadSigningKey,
  openSigningKeyFile,
  openVerificationKeys,
  parsePublicKeyBundle,
  type Principal,
} from '@aifactory/service-auth';
import { runRotate } from './cli.js';
import { manifestFileOf, retireInternalJwtKeys, rotateInternalJwt } from './internal-jwt-rotation.js';

const principal: Principal = { type: 'user', subject: 'alice', platformRoles: [], grants: [] };

async function kidsIn(file: string): Promise<string[]> {
  return [...(await parsePublicKeyBundle(await readFile(file, 'utf8'))).keys()];
}

describe('internal-jwt-signing rotation', () => {
  let dir: string;
  let privateKeyFile: string;
  let publicKeyFile: string;
  let firstKid: string;
  let lines: string[];
  const log = (line: string) => lines.push(line);

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'aif-jwt-rotate-'));
    privateKeyFile = path.join(dir, 'internal-jwt.key.pem');
    publicKeyFile = path.join(dir, 'internal-jwt.pub.pem');
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    await writeFile(privateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
    firstKid = await keyIdOf(publicKey);
    lines = [];
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** No private key material may ever reach output. */
  async function expectNoSecretPrinted(): Promise<void> {
    const pem = await readFile(privateKeyFile, 'utf8');
    const body = pem.split('\n').slice(1, -2).join('');
    for (const line of lines) {
      expect(line).not.toContain('PRIVATE KEY');
      expect(line).not.toContain(body.slice(0, 16));
    }
  }

  it('keeps requests working across the rotation, then retires the old key', async () => {
    // The gateway's signer and a subgraph's verifier, both following their files as they do in the platform.
    const signingKey = await openSigningKeyFile(privateKeyFile, { reloadMs: 20 });
    const keys = await openVerificationKeys([publicKeyFile], { reloadMs: 20 });
    const signer = new InternalTokenSigner({ issuer: 'gateway', key: signingKey });
    const verifier = new InternalTokenVerifier({ audience: 'iam', issuers: ['gateway'], keys });
    const oldToken = await signer.mint({ audience: 'iam', principal, correlationId: 'corr-0001' });
    let rotating = true;
    let served = 0;
    const failures: unknown[] = [];
    const traffic = (async () => {
      while (rotating) {
        const token = await signer.mint({ audience: 'iam', principal, correlationId: 'corr-0001' });
        await verifier.verify(token).then(() => (served += 1), (error: unknown) => failures.push(error));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    try {
      const report = await rotateInternalJwt({ privateKeyFile, publicKeyFile, publishWaitMs: 100, overlapMs: 300, log });
      await new Promise((resolve) => setTimeout(resolve, 100));
      rotating = false;
      await traffic;
      expect(failures).toEqual([]);
      expect(served).toBeGreaterThan(20);
      expect(report.previousKid).toBe(firstKid);
      expect(report.retired).toEqual([firstKid]);
      expect(await kidsIn(publicKeyFile)).toEqual([report.currentKid]);
      expect(signingKey.current().kid).toBe(report.currentKid);
      expect((await loadSigningKey(privateKeyFile)).kid).toBe(report.currentKid);
      expect((await stat(privateKeyFile)).mode & 0o777).toBe(0o600);
      expect((await readdir(dir)).filter((name) => name.endsWith('.tmp') || name.endsWith('.lock'))).toEqual([]);
      expect(JSON.parse(await readFile(manifestFileOf(publicKeyFile), 'utf8'))).toEqual({ superseded: [] });
      // Once the old key left the bundle, its tokens stop verifying.
      await expect(verifier.verify(oldToken)).rejects.toMatchObject({ code: 'INTERNAL_AUTH_UNAUTHENTICATED' });
      await expectNoSecretPrinted();
    } finally {
      rotating = false;
      await traffic;
      signingKey.close();
      keys.close();
    }
  });

  it('publishes the new key before signing with it, and waits the overlap before retiring the old one', async () => {
    const steps: string[] = [];
    let clock = Date.UTC(2026, 10, 1);
    await rotateInternalJwt({
      privateKeyFile,
      publicKeyFile,
      publishWaitMs: 5_000,
      overlapMs: 65_000,
      now: () => clock,
      sleep: async (ms) => {
        const signing = (await loadSigningKey(privateKeyFile)).kid;
        steps.push(`${ms}: ${(await kidsIn(publicKeyFile)).length} keys published, signing with the ${signing === firstKid ? 'old' : 'new'} key`);
        clock += ms;
      },
      log,
    });
    expect(steps).toEqual(['5000: 2 keys published, signing with the old key', '65000: 2 keys published, signing with the new key']);
    expect(await kidsIn(publicKeyFile)).toHaveLength(1);
  });

  it('with --no-wait leaves the old key until a later run finds the overlap over', async () => {
    let clock = Date.UTC(2026, 10, 1);
    const now = () => clock;
    const noWait = await rotateInternalJwt({ privateKeyFile, publicKeyFile, publishWaitMs: 0, wait: false, now, log });
    expect(await kidsIn(publicKeyFile)).toEqual([firstKid, noWait.currentKid]);
    expect(noWait.pending).toEqual([{ kid: firstKid, retireAfter: new Date(clock + 65_000).toISOString() }]);
    expect(lines.some((line) => line.includes('--retire-only'))).toBe(true);

    clock += 30_000;
    expect((await retireInternalJwtKeys({ privateKeyFile, publicKeyFile, now, log })).retired).toEqual([]);
    expect(await kidsIn(publicKeyFile)).toHaveLength(2);
    clock += 40_000;
    expect((await retireInternalJwtKeys({ privateKeyFile, publicKeyFile, now, log })).retired).toEqual([firstKid]);
    expect(await kidsIn(publicKeyFile)).toEqual([noWait.currentKid]);
    await expectNoSecretPrinted();
  });

  it('never retires the key it signs with, and republishes it if it went missing', async () => {
    // A manifest that (wrongly) names the signing key as superseded long ago.
    await writeFile(manifestFileOf(publicKeyFile), JSON.stringify({ superseded: [{ kid: firstKid, supersededAt: '2020-01-01T00:00:00.000Z' }] }));
    expect((await retireInternalJwtKeys({ privateKeyFile, publicKeyFile, log })).retired).toEqual([]);
    expect(await kidsIn(publicKeyFile)).toEqual([firstKid]);
    // A bundle without the signing key gets it back on the next rotation, beside the new one.
    const other = generateKeyPairSync('ed25519').publicKey;
    await writeFile(publicKeyFile, formatPublicKeyBundle([other]));
    const report = await rotateInternalJwt({ privateKeyFile, publicKeyFile, publishWaitMs: 0, wait: false, log });
    expect(await kidsIn(publicKeyFile)).toEqual([await keyIdOf(other), firstKid, report.currentKid]);
    expect(lines.some((line) => line.startsWith('WARNING'))).toBe(true);
  });

  it('runs from the command with the files from the environment', async () => {
    const errors: string[] = [];
    const env = { INTERNAL_JWT_PRIVATE_KEY_FILE: privateKeyFile, INTERNAL_JWT_PUBLIC_KEY_FILES: publicKeyFile };
    expect(await runRotate(['internal-jwt-signing', '--no-wait', '--publish-wait-ms', '0'], env, { out: log, err: (line) => errors.push(line) })).toBe(0);
    expect(errors).toEqual([]);
    expect(await kidsIn(publicKeyFile)).toHaveLength(2);
    expect(lines.at(-1)).toMatch(/^internal-jwt-signing: signing with \S+ \(was \S+\); retired none; still published until the overlap ends: /);
    await expectNoSecretPrinted();

    expect(await runRotate(['internal-jwt-signing', '--prune-only'], env, { out: log, err: (line) => errors.push(line) })).toBe(2);
    expect(await runRotate(['no-such-secret'], env, { out: log, err: (line) => errors.push(line) })).toBe(2);
    expect(await runRotate(['service-credential:billing'], env, { out: log, err: (line) => errors.push(line) })).toBe(2);
    expect(errors.at(-1)).toContain('not rotated by this command');
  });
});
