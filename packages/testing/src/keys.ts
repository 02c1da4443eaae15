import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface KeyFiles {
  privateKeyFile: string;
  publicKeyFile: string;
}

export interface TempKeys {
  dir: string;
  /** Writes a fresh Ed25519 pair for internal JWTs. */
  ed25519(name: string): Promise<KeyFiles>;
  /** Writes a fresh API-key pepper file (version 1) and returns its path. */
  pepper(name: string): Promise<string>;
  cleanup(): Promise<void>;
}

export async function tempKeyDir(): Promise<TempKeys> {
  const dir = await mkdtemp(path.join(tmpdir(), 'aif-keys-'));
  return {
    dir,
    ed25519: async (name) => {
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const files = { privateKeyFile: path.join(dir, `${name}.key.pem`), publicKeyFile: path.join(dir, `${name}.pub.pem`) };
      await writeFile(files.privateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      await writeFile(files.publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
      return files;
    },
    pepper: async (name) => {
      const file = path.join(dir, `${name}.pepper.json`);
      await writeFile(file, JSON.stringify({ current: 1, versions: { '1': randomBytes(32).toString('base64url') } }), { mode: 0o600 });
      return file;
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
