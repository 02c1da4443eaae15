import { AppError } from '@aifactory/errors';

/**
 * The header a client sends a mutation's `Idempotency-Key` in, and the one
 * the gateway forwards the validated key to subgraphs in.
 */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';

const KEY_PATTERN = /^[\x20-\x7E]{1,255}$/;

/**
 * The Idempotency-Key header's value; undefined when the request has none.
 * Seed 004: 1 to 255 printable ASCII characters, sent once. The gateway
 * checks the client's key with it and a subgraph the forwarded one, so both
 * refuse the same keys.
 */
export function validateIdempotencyKey(raw: string | string[] | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const values = Array.isArray(raw) ? raw : [raw];
  if (values.length === 0) return undefined;
  const [value] = values;
  if (values.length > 1 || value === undefined || !KEY_PATTERN.test(value)) {
    throw new AppError('IDEMPOTENCY_KEY_INVALID', 'Idempotency-Key must be one value of 1 to 255 printable ASCII characters');
  }
  return value;
}
