import { createWriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { signAssertion, startJwksServer } from '@aifactory/dev-identity';
import { createLogger, type Logger } from '@aifactory/logging';
import {
  createTestDatabase,
  deleteEventStreams,
  deleteRedisKeys,
  TEST_NATS_URL,
  TEST_REDIS_URL,
  uniqueEventSubjectPrefix,
  type TestDatabase,
} from '@aifactory/testing';
import { ensureDevKeys } from '../dev-keys.js';
import type { RunningPlatform } from '../platform.js';
import type { PlatformWiring } from '../wiring.js';
import { dropWhenIdle, progress, type Teardown } from './teardown.js';

export const BENCH_ISSUER = 'https://authenticate.bench.localhost';
export const BENCH_AUDIENCE = 'aifactory.bench.localhost';
export const BENCH_ADMIN_GROUP = 'bench-platform-admins';

export interface BenchPlatformOptions {
  /** Prefixes the progress lines, e.g. `authz`. */
  name: string;
  workDir: string;
  teardown: Teardown;
  poolSize: number;
  /** Added to the gateway's environment after the bench defaults (no rate limit a run could reach). */
  gatewayOverrides?: Record<string, string>;
}

export interface BenchPlatform {
  platform: RunningPlatform;
  wiring: PlatformWiring;
  db: TestDatabase;
  eventSubjectPrefix: string;
  /** Loggers writing to `<workDir>/platform.log`, for further services a bench starts. */
  logger: (service: string) => Logger;
  /** A dev assertion for `subject`, valid for an hour. */
  sign(subject: string, groups: string[]): Promise<string>;
}

/**
 * The whole platform in this process for a benchmark, on a private database,
 * stream prefix and Redis prefix, with its own keys and JWKS; everything it
 * creates is registered with `teardown`.
 */
export async function startBenchPlatform(options: BenchPlatformOptions): Promise<BenchPlatform> {
  const { name, workDir, teardown } = options;
  const eventSubjectPrefix = uniqueEventSubjectPrefix();
  const redisKeyPrefix = `aif:bench:${randomBytes(6).toString('hex')}:`;
  progress(`${name}: creating and migrating a private database`);
  teardown.add('delete the streams of this run', () => deleteEventStreams(eventSubjectPrefix, TEST_NATS_URL));
  teardown.add('delete the Redis keys of this run', () => deleteRedisKeys(redisKeyPrefix));
  const db = await createTestDatabase();
  teardown.add('drop the private database', () => dropWhenIdle(db));
  const keys = await ensureDevKeys(path.join(workDir, 'keys'));
  const jwks = await startJwksServer([keys.assertionKey]);
  teardown.add('stop the JWKS server', () => jwks.close());
  const logStream = createWriteStream(path.join(workDir, 'platform.log'));
  teardown.add('close the platform log', () => new Promise<void>((resolve) => logStream.end(() => resolve())));
  const unlimited = { limit: 1_000_000_000, windowSeconds: 60 };
  const wiring: PlatformWiring = {
    layout: db.layout,
    poolSize: options.poolSize,
    internalPrivateKeyFile: keys.internalPrivateKeyFile,
    internalPublicKeyFiles: [keys.internalPublicKeyFile],
    apiKeyPepperFile: keys.apiKeyPepperFile,
    jwksUrl: jwks.url,
    issuer: BENCH_ISSUER,
    audience: BENCH_AUDIENCE,
    roleGroups: { platform_admin: [BENCH_ADMIN_GROUP] },
    logLevel: 'warn',
    redisKeyPrefix,
    eventSubjectPrefix,
    gatewayOverrides: {
      REDIS_URL: TEST_REDIS_URL,
      NATS_URL: TEST_NATS_URL,
      RATE_LIMITS: JSON.stringify({ default: unlimited, operations: {}, routes: {}, webhooks: unlimited }),
      ...options.gatewayOverrides,
    },
  };
  const logger = (service: string) => createLogger({ service, level: 'warn', destination: logStream });
  progress(`${name}: starting the platform`);
  // Loaded here, so a bench that needs no platform (`authz --only coldload`) runs without the subgraphs built.
  const { startPlatform } = await import('../platform.js');
  const platform = await startPlatform(wiring, logger);
  teardown.add('stop the platform', () => platform.close());
  const sign = (subject: string, groups: string[]) =>
    signAssertion(keys.assertionKey, {
      issuer: BENCH_ISSUER,
      audience: BENCH_AUDIENCE,
      subject,
      email: `${subject}@example.com`,
      groups,
      expiresInSeconds: 3600,
    });
  return { platform, wiring, db, eventSubjectPrefix, logger, sign };
}
