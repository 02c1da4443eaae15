import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfigOrExit } from '@aifactory/config';
import { InternalTokenSigner, loadSigningKey, type Principal } from '@aifactory/service-auth';
import { devConfigSchema } from '../dev-config.js';
import { ensureDevKeys } from '../dev-keys.js';
import { devAssertion } from '../dev-token.js';
import { DEV_DIR } from '../paths.js';
import { addLoad, emptyLoad, percentile, runLoad, type LoadResult } from './load.js';
import { processCpuMs } from './process-cpu.js';

// npm run bench [-- --duration 10 --concurrency 16]
// Against a running dev stack (npm run up): the same two-subgraph read through
// the gateway, and fetched from iam and billing directly with internal JWTs,
// measured side by side in one run with the plan cache warm.
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '16' },
    warmup: { type: 'string', default: '2' },
    'gateway-pid': { type: 'string' },
  },
});
const durationMs = Number(values.duration) * 1000;
const warmupMs = Number(values.warmup) * 1000;
const concurrency = Number(values.concurrency);
const ROUNDS = 4;
const config = loadConfigOrExit(devConfigSchema, 'bench');
const keys = await ensureDevKeys();
const gatewayPid = Number(values['gateway-pid'] ?? (await readFile(path.join(DEV_DIR, 'run', 'gateway.pid'), 'utf8').catch(() => '')));
if (!Number.isInteger(gatewayPid) || gatewayPid <= 0) {
  process.stderr.write('bench: no gateway pid; start the stack with `npm run up` or pass --gateway-pid\n');
  process.exit(2);
}

try {
  processCpuMs(gatewayPid);
} catch {
  process.stderr.write(`bench: the gateway (pid ${gatewayPid}) is not running; start the stack with \`npm run up\`\n`);
  process.exit(2);
}

const gatewayUrl = `http://127.0.0.1:${config.GATEWAY_PORT}/graphql`;
const iamUrl = `http://127.0.0.1:${config.SUBGRAPH_BASE_PORT}/graphql`;
const billingUrl = `http://127.0.0.1:${config.SUBGRAPH_BASE_PORT + 1}/graphql`;
const assertion = await devAssertion(config, keys.assertionKey, { email: config.DEV_ADMIN_EMAIL, roles: ['platform_admin'] });
const signer = new InternalTokenSigner({ issuer: 'gateway', key: await loadSigningKey(keys.internalPrivateKeyFile), ttlSeconds: 60 });
const admin: Principal = { type: 'user', subject: `dev|${config.DEV_ADMIN_EMAIL}`, email: config.DEV_ADMIN_EMAIL, platformRoles: ['platform_admin'], grants: [] };

// Internal tokens live 60 s at most; the direct client re-mints them well before.
let tokens = { iam: '', billing: '', mintedAt: 0 };
async function internalTokens() {
  if (Date.now() - tokens.mintedAt > 30_000) {
    const mint = (audience: string) => signer.mint({ audience, principal: admin, correlationId: 'bench-direct-0001' });
    tokens = { iam: await mint('iam'), billing: await mint('billing'), mintedAt: Date.now() };
  }
  return tokens;
}

async function post(url: string, headers: Record<string, string>, query: string, variables?: unknown): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data?: unknown; errors?: unknown };
  if (res.status !== 200 || body.errors) throw new Error(`${url} answered ${res.status}`);
  return body.data;
}

const JOINED = '{ organizations { id slug name account { kind currency } } }';
const throughGateway = async () => {
  await post(gatewayUrl, { 'x-pomerium-jwt-assertion': assertion }, JOINED);
};
const direct = async () => {
  const token = await internalTokens();
  const orgs = (await post(iamUrl, { authorization: `Bearer ${token.iam}` }, '{ organizations { id slug name } }')) as {
    organizations: Array<{ id: string }>;
  };
  await post(
    billingUrl,
    { authorization: `Bearer ${token.billing}` },
    'query($r: [_Any!]!) { _entities(representations: $r) { ... on Organization { account { kind currency } } } }',
    { r: orgs.organizations.map((org) => ({ __typename: 'Organization', id: org.id })) },
  );
};

function row(name: string, result: LoadResult, cpuMsPerRequest: number | undefined) {
  const sorted = [...result.latenciesMs].sort((a, b) => a - b);
  return {
    name,
    requests: result.requests,
    errors: result.errors,
    rps: result.requests / result.seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    cpu: cpuMsPerRequest,
  };
}

await runLoad(throughGateway, concurrency, warmupMs);
await runLoad(direct, concurrency, warmupMs);
// Alternating rounds, so drift on a shared machine (other load, CPU boost) hits both paths alike.
const viaGateway = emptyLoad();
const viaDirect = emptyLoad();
let gatewayCpuMs = 0;
for (let round = 0; round < ROUNDS; round += 1) {
  const cpuBefore = processCpuMs(gatewayPid);
  addLoad(viaGateway, await runLoad(throughGateway, concurrency, durationMs / ROUNDS));
  gatewayCpuMs += processCpuMs(gatewayPid) - cpuBefore;
  addLoad(viaDirect, await runLoad(direct, concurrency, durationMs / ROUNDS));
}

const rows = [row('gateway (iam + billing)', viaGateway, gatewayCpuMs / Math.max(1, viaGateway.requests)), row('direct (iam, then billing)', viaDirect, undefined)];
const fmt = (value: number | undefined, digits = 2) => (value === undefined ? '-' : value.toFixed(digits));
process.stdout.write(`\nTwo-subgraph read, ${concurrency} concurrent clients, ${values.duration} s each in ${ROUNDS} alternating rounds after ${values.warmup} s warm-up\n\n`);
process.stdout.write('| path | requests | errors | req/s | p50 ms | p99 ms | gateway CPU ms/req |\n|---|---|---|---|---|---|---|\n');
for (const r of rows) {
  process.stdout.write(`| ${r.name} | ${r.requests} | ${r.errors} | ${fmt(r.rps, 0)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.cpu, 3)} |\n`);
}
const [g, d] = rows as [ReturnType<typeof row>, ReturnType<typeof row>];
process.stdout.write(`| gateway / direct | | | ${fmt(g.rps / d.rps)}x | ${fmt(g.p50 / d.p50)}x | ${fmt(g.p99 / d.p99)}x | |\n`);
