import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { DEV_KEYS_DIR } from './dev-keys.js';
import { DEV_DIR, REPO_ROOT } from './paths.js';

/** The shipped config: one user per service, each publishing only its own subject families. */
export const NATS_SERVER_CONFIG = path.join(REPO_ROOT, 'deploy', 'nats', 'nats-server.conf');
/** Where scripts/ensure-services.sh finds it too (Debian's package). */
export const NATS_SERVER_BINARY = '/usr/sbin/nats-server';
/** The dev stack's own JetStream store when it runs NATS with permissions (git-ignored). */
export const DEV_NATS_STORE_DIR = path.join(DEV_DIR, 'nats');
/** Every user the config names; nats-server refuses to start while one's password is unset. */
export const NATS_USERS = ['gateway', 'iam', 'billing', 'evidence', 'gpuaas', 'appplatform', 'tokenfactory'] as const;

/** Service name -> its NATS password. */
export type NatsPasswords = Record<string, string>;

/**
 * Made once and kept beside the dev keys (git-ignored, 0600), so a restarted
 * stack and its JetStream store keep working; a user added to the config later
 * gets its password on the next start.
 */
export async function ensureNatsPasswords(dir = DEV_KEYS_DIR): Promise<NatsPasswords> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, 'nats-passwords.json');
  const kept = existsSync(file) ? (JSON.parse(await readFile(file, 'utf8')) as NatsPasswords) : {};
  const missing = NATS_USERS.filter((user) => !kept[user]);
  if (missing.length === 0) return kept;
  // nats-server parses a $VAR's value as config: a leading letter keeps it a string, never a number.
  const passwords = { ...kept, ...Object.fromEntries(missing.map((user) => [user, `dev-${randomBytes(24).toString('hex')}`])) };
  await writeFile(file, JSON.stringify(passwords, null, 2), { mode: 0o600 });
  return passwords;
}

/** The variables the config reads the passwords from: `IAM_NATS_PASSWORD`, ... */
export function natsPasswordEnvironment(passwords: NatsPasswords): Record<string, string> {
  return Object.fromEntries(Object.entries(passwords).map(([user, password]) => [`${user.toUpperCase()}_NATS_PASSWORD`, password]));
}

/** nats-server's arguments for the dev stack: the shipped config, on loopback, the flags winning over its port. */
export function devNatsArguments(port: number, storeDir = DEV_NATS_STORE_DIR): string[] {
  return ['-c', NATS_SERVER_CONFIG, '-a', '127.0.0.1', '-p', String(port), '-sd', storeDir];
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
