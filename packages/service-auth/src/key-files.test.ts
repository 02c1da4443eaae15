import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeProtectedHeader } from 'jose';
import { openSigningKeyFile, openVerificationKeys } from './key-files.js';
import { InternalTokenSigner, InternalTokenVerifier } from './internal-jwt.js';
import { formatPublicKeyBundle, keyIdOf, loadVerificationKeys, parsePublicKeyBundle } from './keys.js';
import type { Principal } from './principal.js';

const principal: Principal = { type: 'service', subject: 'gateway', platformRoles: [], grants: [] };

interface Pair {
  kid: string;
  privatePem: string;
  publicKey: KeyObject;
}

async function pair(): Promise<Pair> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { kid: await keyIdOf(publicKey), privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKey };
}

/** What the rotate command does: write aside, then rename over, so a reader sees the old file or the new one. */
async function replace(file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text, { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('key files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'aif-key-files-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads every key of a PEM bundle, and a single key as before', async () => {
    const [a, b, c] = [await pair(), await pair(), await pair()];
    const bundle = path.join(dir, 'bundle.pub.pem');
    const single = path.join(dir, 'single.pub.pem');
    await writeFile(bundle, formatPublicKeyBundle([a.publicKey, b.publicKey]));
    await writeFile(single, c.publicKey.export({ type: 'spki', format: 'pem' }));
    expect([...(await parsePublicKeyBundle(formatPublicKeyBundle([a.publicKey, b.publicKey]))).keys()]).toEqual([a.kid, b.kid]);
    const keys = await loadVerificationKeys([bundle, single]);
    expect(keys.kids).toEqual([a.kid, b.kid, c.kid]);
    await expect(parsePublicKeyBundle('not a key')).rejects.toThrow(/no PEM/);
  });

  it('lets a signer follow its private key file without a restart', async () => {
    const [a, b] = [await pair(), await pair()];
    const file = path.join(dir, 'internal.key.pem');
    await writeFile(file, a.privatePem, { mode: 0o600 });
    const changes: string[][] = [];
    const key = await openSigningKeyFile(file, { reloadMs: 20, onChange: (kids) => changes.push(kids) });
    try {
      const signer = new InternalTokenSigner({ issuer: 'gateway', key });
      expect(decodeProtectedHeader(await signer.mint({ audience: 'iam', principal, correlationId: 'corr-0001' })).kid).toBe(a.kid);
      await replace(file, b.privatePem);
      await until(() => key.current().kid === b.kid);
      expect(decodeProtectedHeader(await signer.mint({ audience: 'iam', principal, correlationId: 'corr-0001' })).kid).toBe(b.kid);
      expect(changes).toEqual([[b.kid]]);
    } finally {
      key.close();
    }
  });

  it('keeps the last good key when the file cannot be read', async () => {
    const a = await pair();
    const file = path.join(dir, 'internal.key.pem');
    await writeFile(file, a.privatePem, { mode: 0o600 });
    const errors: unknown[] = [];
    const key = await openSigningKeyFile(file, { reloadMs: 0, onError: (error) => errors.push(error) });
    await replace(file, 'garbage');
    expect(await key.reload()).toBe(false);
    expect(key.current().kid).toBe(a.kid);
    expect(errors).toHaveLength(1);
    key.close();
  });

  it('lets a verifier accept a newly published kid at once, without a restart', async () => {
    const [a, b] = [await pair(), await pair()];
    const publicFile = path.join(dir, 'internal.pub.pem');
    await writeFile(publicFile, formatPublicKeyBundle([a.publicKey]));
    // No periodic reload: only the unknown kid can make it read the file again.
    const keys = await openVerificationKeys([publicFile], { reloadMs: 0, unknownKidReloadMs: 0 });
    const verifier = new InternalTokenVerifier({ audience: 'iam', issuers: ['gateway'], keys });
    const signedByB = await new InternalTokenSigner({ issuer: 'gateway', key: { kid: b.kid, privateKey: createPrivateKey(b.privatePem) } }).mint({
      audience: 'iam',
      principal,
      correlationId: 'corr-0001',
    });
    await expect(verifier.verify(signedByB)).rejects.toMatchObject({ code: 'INTERNAL_AUTH_UNAUTHENTICATED' });
    await replace(publicFile, formatPublicKeyBundle([a.publicKey, b.publicKey]));
    await expect(verifier.verify(signedByB)).resolves.toMatchObject({ issuer: 'gateway' });
    expect(keys.kids).toEqual([a.kid, b.kid]);
    keys.close();
  });

  it('re-reads for unknown kids at most once per interval', async () => {
    const a = await pair();
    const publicFile = path.join(dir, 'internal.pub.pem');
    await writeFile(publicFile, formatPublicKeyBundle([a.publicKey]));
    const keys = await openVerificationKeys([publicFile], { reloadMs: 0, unknownKidReloadMs: 60_000 });
    await replace(publicFile, formatPublicKeyBundle([a.publicKey, (await pair()).publicKey]));
    expect(await keys.refresh()).toBe(true);
    await replace(publicFile, formatPublicKeyBundle([a.publicKey, (await pair()).publicKey]));
    expect(await keys.refresh()).toBe(false);
    keys.close();
  });

  it('drops a key once it left the files, on the periodic reload', async () => {
    const [a, b] = [await pair(), await pair()];
    const publicFile = path.join(dir, 'internal.pub.pem');
    await writeFile(publicFile, formatPublicKeyBundle([a.publicKey, b.publicKey]));
    const changes: string[][] = [];
    const keys = await openVerificationKeys([publicFile], { reloadMs: 20, onChange: (kids) => changes.push(kids) });
    expect(keys.get(a.kid)).toBeDefined();
    await replace(publicFile, formatPublicKeyBundle([b.publicKey]));
    await until(() => keys.get(a.kid) === undefined);
    expect(keys.kids).toEqual([b.kid]);
    expect(changes).toEqual([[b.kid]]);
    keys.close();
  });

  it('keeps the keys it has when a file turns unreadable', async () => {
    const a = await pair();
    const publicFile = path.join(dir, 'internal.pub.pem');
    await writeFile(publicFile, formatPublicKeyBundle([a.publicKey]));
    const errors: unknown[] = [];
    const keys = await openVerificationKeys([publicFile], { reloadMs: 0, onError: (error) => errors.push(error) });
    await replace(publicFile, 'half a key');
    expect(await keys.reload()).toBe(false);
    expect(keys.kids).toEqual([a.kid]);
    expect(errors).toHaveLength(1);
    keys.close();
  });
});
