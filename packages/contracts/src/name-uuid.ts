import { createHash } from 'node:crypto';

/**
 * An RFC 4122 name-based UUID (version 5: SHA-1 of a namespace and a name).
 * Deterministic event ids come from it (coalesced denies and refusals, usage
 * events), so every instance and every retry derives the same id and the
 * outbox key and JetStream's msg id dedupe it.
 */
export function nameBasedUuid(namespace: Buffer, name: string): string {
  const bytes = createHash('sha1').update(namespace).update(name, 'utf8').digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
