import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { appDatabaseUrl } from '@aifactory/db-tools';
import { describeDatabaseUrl, usedPepperVersions } from './iam-database.js';
import { retireInternalJwtKeys, rotateInternalJwt } from './internal-jwt-rotation.js';
import { prunePepper, rotatePepper } from './pepper-rotation.js';
import { expand, loadSecretPurposes } from './purposes.js';

/** The repository root, from packages/secrets/{src,dist}/. */
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** tools/devstack/src/dev-keys.ts DEV_KEYS_DIR: where the dev stack keeps its keys. */
export const DEV_KEYS_DIR = path.join(REPO_ROOT, '.dev', 'keys');

export const USAGE = `usage: npm run secrets:rotate -- <purpose> [options]

  api-key-pepper          add a pepper version, make it current, prune versions no stored hash uses
      --prune-only          only prune
      --no-prune            only add the version
      --settle-ms <ms>      wait before pruning (default 10000: every process re-reads the file within 5 s)
  internal-jwt-signing    new Ed25519 key: publish it, swap the private key, drop the old public key after the overlap
      --no-wait             leave the old public key; finish later with --retire-only
      --retire-only         drop public keys superseded longer than the overlap ago
      --overlap-ms <ms>     default 65000 (60 s token life + 5 s reload)
      --publish-wait-ms <ms> between publishing the public key and swapping the private one (default 5000)
      --public-key-file <f> which of INTERNAL_JWT_PUBLIC_KEY_FILES to edit (default the first)
  --list                  print every registered secret purpose

Files: API_KEY_PEPPER_FILE, INTERNAL_JWT_PRIVATE_KEY_FILE, INTERNAL_JWT_PUBLIC_KEY_FILES (default: the dev stack's .dev/keys).
iam's database (pepper pruning): IAM_DATABASE_URL, else the dev stack's iam role (DATABASE_ADMIN_URL, DATABASE_NAME, DB_ROLE_PREFIX).
Nothing secret is printed. Exit codes: 0 done, 1 failed, 2 usage, 3 rotated but not pruned (run --prune-only later).`;

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  /** Replaces the iam database query (tests). */
  usedPepperVersions?: (databaseUrl: string) => Promise<number[]>;
}

interface Flags {
  purpose: string | undefined;
  switches: Set<string>;
  values: Map<string, string>;
}

const SWITCHES = new Set(['--prune-only', '--no-prune', '--no-wait', '--retire-only', '--list', '--help']);
const VALUED = new Set(['--settle-ms', '--overlap-ms', '--publish-wait-ms', '--public-key-file']);

export function parseArguments(argv: readonly string[]): Flags {
  const flags: Flags = { purpose: undefined, switches: new Set(), values: new Map() };
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    if (SWITCHES.has(arg)) flags.switches.add(arg);
    else if (VALUED.has(arg)) {
      const value = argv[++index];
      if (value === undefined) throw new UsageError(`${arg} needs a value`);
      flags.values.set(arg, value);
    } else if (arg.startsWith('--')) throw new UsageError(`unknown option ${arg}`);
    else if (flags.purpose === undefined) flags.purpose = arg;
    else throw new UsageError(`one purpose at a time (got ${flags.purpose} and ${arg})`);
  }
  return flags;
}

class UsageError extends Error {}

function milliseconds(flags: Flags, name: string): number | undefined {
  const value = flags.values.get(name);
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`${name} takes a whole number of milliseconds`);
  return Number(value);
}

function allowOnly(flags: Flags, allowed: readonly string[]): void {
  const given = [...flags.switches, ...flags.values.keys()].filter((flag) => !allowed.includes(flag));
  if (given.length > 0) throw new UsageError(`${given.join(', ')} do(es) not apply to ${flags.purpose}`);
}

function iamDatabaseUrl(env: NodeJS.ProcessEnv): string {
  if (env.IAM_DATABASE_URL) return env.IAM_DATABASE_URL;
  return appDatabaseUrl(
    {
      adminUrl: env.DATABASE_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
      database: env.DATABASE_NAME ?? 'aifactory',
      rolePrefix: env.DB_ROLE_PREFIX ?? 'aif_',
    },
    'iam',
  );
}

/** `npm run secrets:rotate -- ...`; returns the exit code. */
export async function runRotate(argv: readonly string[], env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  let flags: Flags;
  try {
    flags = parseArguments(argv);
    if (flags.switches.has('--help')) {
      io.out(USAGE);
      return 0;
    }
    if (flags.switches.has('--list')) {
      for (const purpose of expand(loadSecretPurposes())) {
        io.out(`${purpose.purpose} [${purpose.status}, ${purpose.custodyTier}] ${purpose.location.kind}: ${purpose.location.variables.join(', ') || purpose.location.dev}; rotation: ${purpose.rotation.cadence}`);
      }
      return 0;
    }
    const known = expand(loadSecretPurposes()).find((entry) => entry.purpose === flags.purpose);
    if (flags.purpose === undefined) throw new UsageError('name the purpose to rotate');
    if (known === undefined) throw new UsageError(`${flags.purpose} is not a registered secret purpose (npm run secrets:rotate -- --list)`);
    if (flags.purpose === 'api-key-pepper') return await rotatePepperCommand(flags, env, io);
    if (flags.purpose === 'internal-jwt-signing') return await rotateInternalJwtCommand(flags, env, io);
    throw new UsageError(`${flags.purpose} is not rotated by this command: ${known.rotation.method}`);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`secrets:rotate: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    // Messages name files and kids only; the values never reach an error.
    io.err(`secrets:rotate: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

async function rotatePepperCommand(flags: Flags, env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  allowOnly(flags, ['--prune-only', '--no-prune', '--settle-ms']);
  if (flags.switches.has('--prune-only') && flags.switches.has('--no-prune')) throw new UsageError('--prune-only and --no-prune exclude each other');
  const file = env.API_KEY_PEPPER_FILE ?? path.join(DEV_KEYS_DIR, 'api-key-pepper.json');
  const databaseUrl = iamDatabaseUrl(env);
  const query = io.usedPepperVersions ?? usedPepperVersions;
  const usedVersions = async () => {
    io.out(`asking iam (${describeDatabaseUrl(databaseUrl)}) which pepper versions stored hashes use`);
    return query(databaseUrl);
  };
  if (flags.switches.has('--prune-only')) {
    const report = await prunePepper({ file, usedVersions, log: io.out });
    io.out(`api-key-pepper: current ${report.current}; kept ${report.kept.join(', ')}; pruned ${report.pruned.join(', ') || 'none'}`);
    return 0;
  }
  const prune = !flags.switches.has('--no-prune');
  const settleMs = milliseconds(flags, '--settle-ms');
  const report = await rotatePepper({
    file,
    log: io.out,
    ...(prune ? { usedVersions } : {}),
    ...(settleMs !== undefined ? { settleMs } : {}),
    ...(io.sleep ? { sleep: io.sleep } : {}),
  });
  io.out(
    `api-key-pepper: version ${report.current} current (was ${report.previous}); ` +
      (report.pruneChecked ? `pruned ${report.pruned.join(', ') || 'none'}` : 'nothing pruned: run again with --prune-only once iam is reachable'),
  );
  // Rotated but not pruned: done, yet worth a look (an unused old version stays until a later prune).
  return report.pruneError === undefined ? 0 : 3;
}

async function rotateInternalJwtCommand(flags: Flags, env: NodeJS.ProcessEnv, io: CliIo): Promise<number> {
  allowOnly(flags, ['--no-wait', '--retire-only', '--overlap-ms', '--publish-wait-ms', '--public-key-file']);
  const publicKeyFiles = (env.INTERNAL_JWT_PUBLIC_KEY_FILES ?? path.join(DEV_KEYS_DIR, 'internal-jwt.pub.pem'))
    .split(',')
    .map((file) => file.trim())
    .filter((file) => file.length > 0);
  const publicKeyFile = flags.values.get('--public-key-file') ?? publicKeyFiles[0];
  if (publicKeyFile === undefined) throw new UsageError('INTERNAL_JWT_PUBLIC_KEY_FILES names no file');
  const overlapMs = milliseconds(flags, '--overlap-ms');
  const publishWaitMs = milliseconds(flags, '--publish-wait-ms');
  const options = {
    privateKeyFile: env.INTERNAL_JWT_PRIVATE_KEY_FILE ?? path.join(DEV_KEYS_DIR, 'internal-jwt.key.pem'),
    publicKeyFile,
    log: io.out,
    wait: !flags.switches.has('--no-wait'),
    ...(overlapMs !== undefined ? { overlapMs } : {}),
    ...(publishWaitMs !== undefined ? { publishWaitMs } : {}),
    ...(io.sleep ? { sleep: io.sleep } : {}),
    ...(io.now ? { now: io.now } : {}),
  };
  const report = flags.switches.has('--retire-only') ? await retireInternalJwtKeys(options) : await rotateInternalJwt(options);
  io.out(
    `internal-jwt-signing: signing with ${report.currentKid}` +
      (report.previousKid ? ` (was ${report.previousKid})` : '') +
      `; retired ${report.retired.join(', ') || 'none'}` +
      (report.pending.length > 0 ? `; still published until the overlap ends: ${report.pending.map((entry) => `${entry.kid} (${entry.retireAfter})`).join(', ')}` : ''),
  );
  return 0;
}
