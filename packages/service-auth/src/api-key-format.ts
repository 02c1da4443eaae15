import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * The API key's text (issue 15, Format): `aif_<env>_<keyId>_<secret><checksum>`.
 * The fixed prefix names the platform and environment so secret scanners can
 * match it; the key id is the lookup handle (not secret); the secret is 32
 * random bytes; the trailing CRC32 lets a scanner (and the gateway, before any
 * lookup) tell a real key from a look-alike without asking anyone.
 */
export const API_KEY_ENVIRONMENTS = ['live', 'test', 'dev'] as const;
export type ApiKeyEnvironment = (typeof API_KEY_ENVIRONMENTS)[number];

export const API_KEY_ID_LENGTH = 20;
export const API_KEY_SECRET_BYTES = 32;
/** 32 bytes in base62 take at most 43 digits; shorter values are left-padded. */
export const API_KEY_SECRET_LENGTH = 43;
const CHECKSUM_LENGTH = 6;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** What a secret scanner matches (also exported for docs and the leak test). */
export const API_KEY_PATTERN = /^aif_(live|test|dev)_([a-z2-7]{20})_([0-9A-Za-z]{43})([0-9A-Za-z]{6})$/;

export interface ParsedApiKey {
  environment: ApiKeyEnvironment;
  keyId: string;
  secret: string;
}

export interface IssuedApiKey extends ParsedApiKey {
  /** The whole key, shown to its creator once and never stored. */
  raw: string;
  /** `aif_<env>_<keyId>`: safe to show and log. */
  prefix: string;
  fingerprint: string;
}

function base62(bytes: Buffer, length: number): string {
  let value = BigInt(`0x${bytes.toString('hex') || '0'}`);
  let text = '';
  while (value > 0n) {
    text = BASE62[Number(value % 62n)] + text;
    value /= 62n;
  }
  return text.padStart(length, '0');
}

function checksum(body: string): string {
  const sum = Buffer.alloc(4);
  sum.writeUInt32BE(crc32(body) >>> 0);
  return base62(sum, CHECKSUM_LENGTH);
}

export function newApiKeyId(): string {
  const bytes = randomBytes(API_KEY_ID_LENGTH);
  let id = '';
  for (const byte of bytes) id += BASE32[byte & 31];
  return id;
}

export function apiKeyPrefix(environment: ApiKeyEnvironment, keyId: string): string {
  return `aif_${environment}_${keyId}`;
}

/**
 * A one-way fingerprint of the whole key, so an owner can match a key they hold
 * to its listing; it reveals nothing of the secret.
 */
export function apiKeyFingerprint(raw: string): string {
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

export function issueApiKey(environment: ApiKeyEnvironment, keyId: string = newApiKeyId()): IssuedApiKey {
  const secret = base62(randomBytes(API_KEY_SECRET_BYTES), API_KEY_SECRET_LENGTH);
  const body = `${apiKeyPrefix(environment, keyId)}_${secret}`;
  const raw = body + checksum(body);
  return { environment, keyId, secret, raw, prefix: apiKeyPrefix(environment, keyId), fingerprint: apiKeyFingerprint(raw) };
}

/** The key's parts, or null for anything that is not a well-formed key with a valid checksum. */
export function parseApiKey(raw: string): ParsedApiKey | null {
  const match = API_KEY_PATTERN.exec(raw);
  if (match === null) return null;
  const [, environment, keyId, secret, sum] = match as unknown as [string, ApiKeyEnvironment, string, string, string];
  if (checksum(raw.slice(0, raw.length - CHECKSUM_LENGTH)) !== sum) return null;
  return { environment, keyId, secret };
}
