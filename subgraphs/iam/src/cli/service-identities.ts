import { readFile } from 'node:fs/promises';
import { loadConfigOrExit } from '@aifactory/config';
import { databaseConfigSchema } from '@aifactory/subgraph-kit';
import { openServiceIdentityAdmin } from '../service-identity-admin.js';

const USAGE = `usage: node subgraphs/iam/dist/cli/service-identities.js <command>
  list                              every service identity and its key ids
  register <name> <public-key-file> registers an Ed25519 public key (SPKI PEM); prints its kid
  retire <name> <kid>               retires a key: tokens signed with it are refused
  disable <name> <reason>           emergency stop: the service's tokens are refused everywhere
  enable <name>                     accepts the service's tokens again
Reads DATABASE_URL (iam's app role) and EVENT_SUBJECT_PREFIX like the iam seed; prints JSON.`;

// An operator's (or secrets:rotate's) way to the service identities, with iam's own domain code and audit.
const [command, ...args] = process.argv.slice(2);
const config = loadConfigOrExit(databaseConfigSchema, 'iam service identities');
const admin = openServiceIdentityAdmin(config, 'iam-service-identities-cli');
try {
  let result: unknown;
  if (command === 'list' && args.length === 0) result = await admin.list();
  else if (command === 'register' && args.length === 2) result = await admin.registerKey(args[0]!, await readFile(args[1]!, 'utf8'));
  else if (command === 'retire' && args.length === 2) result = await admin.retireKey(args[0]!, args[1]!);
  else if (command === 'disable' && args.length === 2) result = await admin.disable(args[0]!, args[1]!);
  else if (command === 'enable' && args.length === 1) result = await admin.enable(args[0]!);
  else {
    process.stderr.write(`${USAGE}\n`);
    process.exitCode = 2;
  }
  if (result !== undefined) process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await admin.close();
}
