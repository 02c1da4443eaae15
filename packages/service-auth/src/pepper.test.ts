import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initialPepperFile, newPepperValue, parsePepperFile, PepperRing, readPepperFile, writePepperFile } from './pepper.js';

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('pepper ring', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'aif-pepper-'));
    file = path.join(dir, 'pepper.json');
    await writePepperFile(file, initialPepperFile());
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('hashes with the current version and verifies what it hashed', async () => {
    const ring = await PepperRing.load(file, { reloadEveryMs: 0 });
    expect(ring.currentVersion).toBe(1);
    const hash = ring.hash('the-secret');
    expect(hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(ring.hash('the-secret', 1)).toBe(hash);
    expect(ring.verify('the-secret', 1, hash)).toBe(true);
  });

  it('answers false, never throws, for a wrong secret, an unknown version or a malformed hash', async () => {
    const ring = await PepperRing.load(file, { reloadEveryMs: 0 });
    const hash = ring.hash('the-secret');
    expect(ring.verify('the-secreT', 1, hash)).toBe(false);
    expect(ring.verify('the-secret', 2, hash)).toBe(false);
    expect(ring.verify('the-secret', 1, hash.slice(1))).toBe(false);
    expect(ring.verify('the-secret', 1, '')).toBe(false);
    expect(() => ring.hash('the-secret', 2)).toThrow(RangeError);
  });

  it('gives different hashes under different peppers (a stolen database alone cannot test guesses)', async () => {
    const other = path.join(dir, 'other.json');
    await writePepperFile(other, initialPepperFile());
    const [a, b] = [await PepperRing.load(file, { reloadEveryMs: 0 }), await PepperRing.load(other, { reloadEveryMs: 0 })];
    expect(a.hash('the-secret')).not.toBe(b.hash('the-secret'));
  });

  it('picks up a new version on ensure(), at most once per interval', async () => {
    const ring = await PepperRing.load(file, { reloadEveryMs: 0, reloadMinIntervalMs: 0 });
    const pepper = await readPepperFile(file);
    await writePepperFile(file, { current: 2, versions: { ...pepper.versions, '2': newPepperValue() } });
    expect(await ring.ensure(2)).toBe(true);
    expect(ring.versions).toEqual([1, 2]);
    expect(ring.currentVersion).toBe(2);

    const throttled = await PepperRing.load(file, { reloadEveryMs: 0, reloadMinIntervalMs: 60_000 });
    expect(await throttled.ensure(3)).toBe(false); // the first unknown version reads the file (no 3 there)
    await writePepperFile(file, { current: 3, versions: { ...(await readPepperFile(file)).versions, '3': newPepperValue() } });
    expect(await throttled.ensure(3)).toBe(false); // within the interval: no second read
    expect(await throttled.ensure(1)).toBe(true);
  });

  it('follows the file on its own: a rotation becomes current without a restart', async () => {
    const ring = await PepperRing.load(file, { reloadEveryMs: 20 });
    try {
      const pepper = await readPepperFile(file);
      await writePepperFile(file, { current: 2, versions: { ...pepper.versions, '2': newPepperValue() } });
      await until(() => ring.currentVersion === 2);
      // A pruned version is gone the same way.
      await writePepperFile(file, { current: 2, versions: { '2': (await readPepperFile(file)).versions['2']! } });
      await until(() => !ring.has(1));
    } finally {
      ring.close();
    }
  });

  it('writes atomically and for the owner only', async () => {
    await writePepperFile(file, initialPepperFile());
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['pepper.json']);
    expect(parsePepperFile(await readFile(file, 'utf8'), file).current).toBe(1);
  });

  it('refuses a file whose current version is missing or whose values are too short', async () => {
    expect(() => parsePepperFile(JSON.stringify({ current: 2, versions: { '1': newPepperValue() } }), 'f')).toThrow(/current version 2/);
    expect(() => parsePepperFile(JSON.stringify({ current: 1, versions: { '1': 'short' } }), 'f')).toThrow();
    expect(() => parsePepperFile('{', 'f')).toThrow(/not JSON/);
    await writeFile(file, '{');
    await expect(PepperRing.load(file)).rejects.toThrow();
  });
});
