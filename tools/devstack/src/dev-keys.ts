import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { generateAssertionKey, type AssertionKey } from '@aifactory/dev-identity';
import { initialPepperFile, writePepperFile } from '@aifactory/service-auth';
import { DEV_DIR } from './paths.js';

export const DEV_KEYS_DIR = path.join(DEV_DIR, 'keys');

export interface DevKeys {
  assertionKey: AssertionKey;
  internalPrivateKeyFile: string;
  internalPublicKeyFile: string;
  /** The versioned pepper API-key hashes are keyed with (`npm run secrets:rotate -- api-key-pepper`). */
  apiKeyPepperFile: string;
}

/**
 * Dev keys are made once and kept (git-ignored), so tokens printed earlier
 * stay valid across restarts. Production keys come from files named in config.
 */
export async function ensureDevKeys(dir = DEV_KEYS_DIR): Promise<DevKeys> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const assertionFile = path.join(dir, 'dev-idp-assertion.jwk.json');
  const internalPrivateKeyFile = path.join(dir, 'internal-jwt.key.pem');
  const internalPublicKeyFile = path.join(dir, 'internal-jwt.pub.pem');
  const apiKeyPepperFile = path.join(dir, 'api-key-pepper.json');
  if (!existsSync(assertionFile)) {
    await writeFile(assertionFile, JSON.stringify(await generateAssertionKey(), null, 2), { mode: 0o600 });
  }
  if (!existsSync(internalPrivateKeyFile) || !existsSync(internalPublicKeyFile)) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    await writeFile(internalPrivateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(internalPublicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
  }
  if (!existsSync(apiKeyPepperFile)) await writePepperFile(apiKeyPepperFile, initialPepperFile());
  return {
    assertionKey: JSON.parse(await readFile(assertionFile, 'utf8')) as AssertionKey,
    internalPrivateKeyFile,
    internalPublicKeyFile,
    apiKeyPepperFile,
  };
}
