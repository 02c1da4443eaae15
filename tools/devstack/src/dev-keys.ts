import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import path from 'node:path';
import { SUBGRAPHS } from '@aifactory/db-tools';
import { generateAssertionKey, type AssertionKey } from '@aifactory/dev-identity';
import { initialPepperFile, keyIdOf, writePepperFile } from '@aifactory/service-auth';
import { DEV_DIR } from './paths.js';

export const DEV_KEYS_DIR = path.join(DEV_DIR, 'keys');

export interface DevKeys {
  assertionKey: AssertionKey;
  internalPrivateKeyFile: string;
  internalPublicKeyFile: string;
  /** The versioned pepper API-key hashes are keyed with (`npm run secrets:rotate -- api-key-pepper`). */
  apiKeyPepperFile: string;
  /**
   * Each subgraph's own Ed25519 credential (`service-<name>.key.pem`), its
   * service identity's private key: the service mints its tokens for calls to
   * other services with it. Its public half is registered with iam by the seed.
   */
  serviceCredentialFiles: Record<string, string>;
  /** The local fake Stripe's secret key (`sk_test_...`), billing's STRIPE_API_KEY_FILE. */
  stripeApiKeyFile: string;
  /** The local fake Stripe's webhook signing secret (`whsec_...`), billing's STRIPE_WEBHOOK_SECRET_FILE. */
  stripeWebhookSecretFile: string;
}

/** The file of a service's credential in a keys folder. */
export function serviceCredentialFile(dir: string, service: string): string {
  return path.join(dir, `service-${service}.key.pem`);
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
  const stripeApiKeyFile = path.join(dir, 'stripe-api-key');
  const stripeWebhookSecretFile = path.join(dir, 'stripe-webhook-secret');
  if (!existsSync(assertionFile)) {
    await writeFile(assertionFile, JSON.stringify(await generateAssertionKey(), null, 2), { mode: 0o600 });
  }
  if (!existsSync(internalPrivateKeyFile) || !existsSync(internalPublicKeyFile)) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    await writeFile(internalPrivateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(internalPublicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }));
  }
  if (!existsSync(apiKeyPepperFile)) await writePepperFile(apiKeyPepperFile, initialPepperFile());
  // Kept like the others, so checkout sessions and signed events of an earlier run stay valid.
  if (!existsSync(stripeApiKeyFile)) await writeFile(stripeApiKeyFile, `sk_test_${randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
  if (!existsSync(stripeWebhookSecretFile)) await writeFile(stripeWebhookSecretFile, `whsec_${randomBytes(24).toString('hex')}\n`, { mode: 0o600 });
  const serviceCredentialFiles: Record<string, string> = {};
  for (const service of SUBGRAPHS) {
    const file = serviceCredentialFile(dir, service);
    if (!existsSync(file)) {
      await writeFile(file, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    }
    serviceCredentialFiles[service] = file;
  }
  return {
    assertionKey: JSON.parse(await readFile(assertionFile, 'utf8')) as AssertionKey,
    internalPrivateKeyFile,
    internalPublicKeyFile,
    apiKeyPepperFile,
    serviceCredentialFiles,
    stripeApiKeyFile,
    stripeWebhookSecretFile,
  };
}

/**
 * The public halves of the service credentials, as iam registers them
 * (`ServiceIdentityService.registerKey(name, publicKeyPem)`); the kid is the
 * key's RFC 7638 thumbprint, the same iam computes. Never the private key.
 */
export async function serviceCredentialPublicKeys(
  files: Record<string, string>,
): Promise<Array<{ service: string; kid: string; publicKeyPem: string }>> {
  const keys = [];
  for (const [service, file] of Object.entries(files)) {
    const publicKey = createPublicKey(createPrivateKey(await readFile(file)));
    keys.push({ service, kid: await keyIdOf(publicKey), publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string });
  }
  return keys;
}
