import { AppError } from '@aifactory/errors';

/** The largest amount a BIGINT column holds. */
export const MAX_AMOUNT = 2n ** 63n - 1n;
const DIGITS = /^(0|[1-9][0-9]{0,18})$/;
const SIGNED_DIGITS = /^-?(0|[1-9][0-9]{0,18})$/;
export const CURRENCY_PATTERN = /^[A-Z]{3}$/;

/**
 * An amount in integer minor units, as clients send it: a string of digits
 * (JSON numbers lose precision past 2^53). Zero is refused unless allowed:
 * a transfer, a credit or a reservation always moves something.
 */
export function parseAmount(text: unknown, field: string, options: { allowZero?: boolean } = {}): bigint {
  if (typeof text !== 'string' || !DIGITS.test(text)) {
    throw new AppError('BILLING_AMOUNT_INVALID', `${field} must be a whole number of minor units, as a string of digits such as "1250"`, {
      details: { field },
    });
  }
  const amount = BigInt(text);
  if (amount > MAX_AMOUNT) throw new AppError('BILLING_AMOUNT_INVALID', `${field} is too large`, { details: { field } });
  if (amount === 0n && options.allowZero !== true) {
    throw new AppError('BILLING_AMOUNT_INVALID', `${field} must be above zero`, { details: { field } });
  }
  return amount;
}

/** An amount as JSON, events, logs and GraphQL carry it: a string. */
export function formatAmount(amount: bigint): string {
  return amount.toString();
}

/** Reads a BIGINT that `pg` returns as a string. */
export function bigintOf(value: string | number | bigint | null | undefined): bigint {
  if (value === null || value === undefined) return 0n;
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') return BigInt(value);
  if (!SIGNED_DIGITS.test(value)) throw new RangeError(`not an integer: ${value}`);
  return BigInt(value);
}

/** The budget period an instant falls in: its calendar month in UTC, as the month's first day (`2026-11-01`). */
export function periodOf(at: Date): string {
  return `${at.getUTCFullYear().toString().padStart(4, '0')}-${(at.getUTCMonth() + 1).toString().padStart(2, '0')}-01`;
}

export function checkCurrency(currency: unknown, field = 'currency'): string {
  if (typeof currency !== 'string' || !CURRENCY_PATTERN.test(currency)) {
    throw new AppError('BAD_REQUEST_INVALID_INPUT', `${field} must be an ISO 4217 code such as USD`, { details: { field } });
  }
  return currency;
}
