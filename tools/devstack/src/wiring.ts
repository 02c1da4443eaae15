import { ConfigError } from '@aifactory/config';
import { appDatabaseUrl, type DatabaseLayout } from '@aifactory/db-tools';
import type { StripeWiring } from './dev-stripe.js';

/** Everything that ties the processes of one platform together. */
export interface PlatformWiring {
  layout: DatabaseLayout;
  poolSize: number;
  internalPrivateKeyFile: string;
  internalPublicKeyFiles: string[];
  /** iam hashes new API keys with it, the gateway checks presented keys with it. */
  apiKeyPepperFile: string;
  /** Subgraph name -> its own service credential (SERVICE_CREDENTIAL_FILE); a subgraph without one calls no other service. */
  serviceCredentialFiles?: Record<string, string>;
  /**
   * Subgraph name -> its base URL (`http://127.0.0.1:4002`), given to every
   * subgraph as SERVICE_URLS so one can call another with its own identity.
   * Known only where ports are fixed up front (the dev stack).
   */
  serviceUrls?: Record<string, string>;
  jwksUrl: string;
  issuer: string;
  audience: string;
  roleGroups: Record<string, string[]>;
  logLevel: string;
  /** Tests shorten it so a newly published key is fetched at once. */
  jwksCooldownMs?: number;
  /** Keeps this platform's Redis keys apart from any other stack or test on the same Redis. */
  redisKeyPrefix?: string;
  /**
   * Keeps this platform's events apart on a shared NATS: every subgraph
   * publishes under `<prefix>.` into streams named `<PREFIX>_...`. Tests set
   * one per run; the dev stack leaves it out.
   */
  eventSubjectPrefix?: string;
  /** Extra gateway variables (limits, rate-limit rules) for tests and benchmarks. */
  gatewayOverrides?: Record<string, string>;
  /**
   * A NATS with one user per service (deploy/nats/nats-server.conf): each
   * service connects to `url` as itself with its password from `passwords`
   * (service name -> password). Left out, services use their default NATS
   * without credentials.
   */
  nats?: { url: string; passwords: Record<string, string> };
  /** Billing's Stripe: the local fake's address and the files of its key and webhook secret (startPlatform makes its own). */
  stripe?: StripeWiring;
}

/** One service's NATS_URL, NATS_USER and NATS_PASSWORD; none when the wiring names no NATS. */
function natsEnvironment(wiring: PlatformWiring, service: string): Record<string, string> {
  if (!wiring.nats) return {};
  const password = wiring.nats.passwords[service];
  if (!password) throw new ConfigError([`NATS_PASSWORD: the wiring has no NATS password for ${service} (deploy/nats/nats-server.conf has one user per service)`]);
  return { NATS_URL: wiring.nats.url, NATS_USER: service, NATS_PASSWORD: password };
}

/**
 * The environment of one subgraph process. The in-process launcher parses the
 * very same records, so tests and the dev stack share one config path.
 */
export function subgraphEnvironment(wiring: PlatformWiring, subgraph: string, port: number): Record<string, string> {
  const environment: Record<string, string> = {
    PORT: String(port),
    LOG_LEVEL: wiring.logLevel,
    DATABASE_URL: appDatabaseUrl(wiring.layout, subgraph),
    DB_POOL_SIZE: String(wiring.poolSize),
    INTERNAL_JWT_PUBLIC_KEY_FILES: wiring.internalPublicKeyFiles.join(','),
    SHUTDOWN_GRACE_MS: '5000',
    ...natsEnvironment(wiring, subgraph),
  };
  if (wiring.eventSubjectPrefix !== undefined) environment.EVENT_SUBJECT_PREFIX = wiring.eventSubjectPrefix;
  if (subgraph === 'iam') environment.API_KEY_PEPPER_FILE = wiring.apiKeyPepperFile;
  if (subgraph === 'billing' && wiring.stripe !== undefined) {
    environment.STRIPE_API_KEY_FILE = wiring.stripe.apiKeyFile;
    environment.STRIPE_WEBHOOK_SECRET_FILE = wiring.stripe.webhookSecretFile;
    environment.STRIPE_API_URL = wiring.stripe.apiUrl;
  }
  const credential = wiring.serviceCredentialFiles?.[subgraph];
  if (credential !== undefined) environment.SERVICE_CREDENTIAL_FILE = credential;
  if (wiring.serviceUrls !== undefined) {
    // Every other subgraph: a service never needs a token for itself.
    const others = Object.fromEntries(Object.entries(wiring.serviceUrls).filter(([name]) => name !== subgraph));
    environment.SERVICE_URLS = JSON.stringify(others);
  }
  return environment;
}

export function gatewayEnvironment(wiring: PlatformWiring, port: number, subgraphUrls: Record<string, string>): Record<string, string> {
  const environment: Record<string, string> = {
    PORT: String(port),
    LOG_LEVEL: wiring.logLevel,
    SUBGRAPH_URLS: JSON.stringify(subgraphUrls),
    POMERIUM_JWKS_URL: wiring.jwksUrl,
    POMERIUM_ISSUER: wiring.issuer,
    POMERIUM_AUDIENCE: wiring.audience,
    PLATFORM_ROLE_GROUPS: JSON.stringify(wiring.roleGroups),
    INTERNAL_JWT_PRIVATE_KEY_FILE: wiring.internalPrivateKeyFile,
    API_KEY_PEPPER_FILE: wiring.apiKeyPepperFile,
    SHUTDOWN_GRACE_MS: '5000',
    ...natsEnvironment(wiring, 'gateway'),
  };
  if (wiring.jwksCooldownMs !== undefined) environment.POMERIUM_JWKS_COOLDOWN_MS = String(wiring.jwksCooldownMs);
  if (wiring.redisKeyPrefix !== undefined) environment.REDIS_KEY_PREFIX = wiring.redisKeyPrefix;
  // The gateway reads the events the subgraphs publish: the same prefix, the same streams.
  if (wiring.eventSubjectPrefix !== undefined) environment.EVENT_SUBJECT_PREFIX = wiring.eventSubjectPrefix;
  return { ...environment, ...wiring.gatewayOverrides };
}
