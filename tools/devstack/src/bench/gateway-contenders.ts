import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { layoutOf, type DevConfig } from '../dev-config.js';
import type { DevKeys } from '../dev-keys.js';
import { REPO_ROOT } from '../paths.js';
import { gatewayEnvironment, type PlatformWiring } from '../wiring.js';
import { startBenchProcess, type BenchProcess } from './bench-processes.js';
import { freePort } from '@aifactory/testing';

export const GATEWAY_KINDS = ['platform', 'apollo', 'hive'] as const;
export type GatewayKind = (typeof GATEWAY_KINDS)[number];

/** Pomerium's header (gateway/src/auth/pomerium.ts); the gateway package does not export it. */
const ASSERTION_HEADER = 'x-pomerium-jwt-assertion';

export interface GatewaySetup {
  workDir: string;
  supergraphFile: string;
  subgraphUrls: Record<string, string>;
  config: DevConfig;
  keys: DevKeys;
  jwksUrl: string;
  /** A platform_admin assertion the platform gateway accepts. */
  assertion: string;
}

export interface RunningGateway {
  kind: GatewayKind;
  label: string;
  /** The GraphQL endpoint. */
  url: string;
  /** What every request to it carries besides the body. */
  headers: Record<string, string>;
  process: BenchProcess;
}

export interface PlatformGatewayEnvOptions {
  port: number;
  supergraphFile: string;
  subgraphUrls: Record<string, string>;
  jwksUrl: string;
  keys: DevKeys;
  config: DevConfig;
}

/**
 * The platform gateway's environment in the comparison: the dev stack's own
 * (gatewayEnvironment), pointed at the fixture supergraph. Every edge feature
 * stays on, rate limiting included, with limits high enough that no benchmark
 * request is refused: each must cost what it costs in production.
 */
export function platformGatewayEnv(options: PlatformGatewayEnvOptions): Record<string, string> {
  const { config, keys } = options;
  const wiring: PlatformWiring = {
    layout: layoutOf(config),
    poolSize: config.DB_POOL_SIZE,
    internalPrivateKeyFile: keys.internalPrivateKeyFile,
    internalPublicKeyFiles: [keys.internalPublicKeyFile],
    apiKeyPepperFile: keys.apiKeyPepperFile,
    jwksUrl: options.jwksUrl,
    issuer: config.DEV_IDP_ISSUER,
    audience: config.DEV_IDP_AUDIENCE,
    roleGroups: config.PLATFORM_ROLE_GROUPS,
    logLevel: config.LOG_LEVEL,
  };
  const unlimited = { limit: 1_000_000_000, windowSeconds: 60 };
  return {
    ...gatewayEnvironment(wiring, options.port, options.subgraphUrls),
    SUPERGRAPH_FILE: options.supergraphFile,
    // Redis is shared with the dev stack and tests: this run's counters live under keys of their own.
    REDIS_KEY_PREFIX: `aif:bench:${randomUUID()}:`,
    RATE_LIMITS: JSON.stringify({ default: unlimited, operations: {}, routes: {}, webhooks: unlimited }),
  };
}

/** The directory of an installed package, found the way Node finds it from here. */
function packageDir(name: string): string {
  let dir = path.dirname(fileURLToPath(import.meta.resolve(name)));
  while (dir !== path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === name) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`${name} is not installed`);
}

function packageManifest(name: string): { version: string; bin?: Record<string, string> } {
  return JSON.parse(readFileSync(path.join(packageDir(name), 'package.json'), 'utf8')) as { version: string; bin?: Record<string, string> };
}

/**
 * The two baselines inherit nothing: an APOLLO_KEY or FORK in the caller's
 * shell would switch on usage reporting or workers in one of them only.
 */
function cleanEnv(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'production' };
}

const benchEntry = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** Starts one gateway on a free port; the caller waits until it answers. */
export async function startGateway(kind: GatewayKind, setup: GatewaySetup): Promise<RunningGateway> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/graphql`;
  const common = { cwd: REPO_ROOT, logDir: setup.workDir };
  switch (kind) {
    case 'platform': {
      const env = platformGatewayEnv({ port, supergraphFile: setup.supergraphFile, subgraphUrls: setup.subgraphUrls, jwksUrl: setup.jwksUrl, keys: setup.keys, config: setup.config });
      return {
        kind,
        label: 'platform gateway',
        url,
        headers: { [ASSERTION_HEADER]: setup.assertion },
        // Inherits the shell's environment as under `npm run up`, so REDIS_URL or NATS_URL set there reach it.
        process: startBenchProcess({
          ...common,
          name: 'platform-gateway',
          args: [path.join(REPO_ROOT, 'gateway', 'dist', 'main.js')],
          env: { ...(process.env as Record<string, string>), NODE_ENV: 'production', ...env },
        }),
      };
    }
    case 'apollo':
      return {
        kind,
        label: `@apollo/gateway ${packageManifest('@apollo/gateway').version}`,
        url,
        headers: {},
        process: startBenchProcess({ ...common, name: 'apollo-gateway', args: [benchEntry('./plain-apollo-main.js'), setup.supergraphFile, String(port)], env: cleanEnv() }),
      };
    case 'hive': {
      const manifest = packageManifest('@graphql-hive/gateway');
      const bin = path.join(packageDir('@graphql-hive/gateway'), manifest.bin?.['hive-gateway'] ?? 'dist/bin.js');
      // Given explicitly, so no gateway.config.* that happens to lie in the working directory is picked up.
      const configFile = path.join(setup.workDir, 'hive-gateway.config.mjs');
      // Hive folds identical in-flight subgraph calls into one by default; the other two make every call,
      // and the comparison is of gateways doing the same subgraph work.
      const config = { landingPage: false, graphiql: false, transportEntries: { '*.http': { options: { deduplicateInflightRequests: false } } } };
      await writeFile(configFile, `export const gatewayConfig = ${JSON.stringify(config)};\n`);
      return {
        kind,
        label: `Hive Gateway ${manifest.version}`,
        url,
        headers: {},
        process: startBenchProcess({
          ...common,
          name: 'hive-gateway',
          // One process, as the other two: --fork 1 is its default, said out loud.
          args: [bin, 'supergraph', setup.supergraphFile, '--host', '127.0.0.1', '--port', String(port), '--fork', '1', '--config-path', configFile],
          env: cleanEnv(),
        }),
      };
    }
    default: {
      const unknown: never = kind;
      throw new Error(`no gateway kind ${String(unknown)}`);
    }
  }
}
