import type { PolicyKeyDef } from './model.js';

/**
 * A policy value placed on one exact scale, so bounds compare without floats:
 * integers, decimals and durations (in seconds) by magnitude, booleans as
 * false < true, enums by their order in the key's enumValues.
 */
export interface Exact {
  units: bigint;
  scale: number;
}

export type ParsedPolicyValue = { ok: true; exact: Exact } | { ok: false; problem: string };

const INTEGER = /^-?(0|[1-9]\d*)$/;
const DECIMAL = /^-?(0|[1-9]\d*)(\.\d+)?$/;
/**
 * Weeks, days, hours, minutes, seconds. Years and months are refused: their
 * length in seconds depends on the calendar, and a bound must compare exactly.
 */
const DURATION = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/;
const DURATION_SECONDS = [7n * 86_400n, 86_400n, 3_600n, 60n, 1n];

/** Checks a value against its key's type and places it on the exact scale. */
export function parsePolicyValue(def: PolicyKeyDef, value: unknown): ParsedPolicyValue {
  switch (def.type) {
    case 'integer':
      return typeof value === 'string' && INTEGER.test(value)
        ? { ok: true, exact: { units: BigInt(value), scale: 0 } }
        : { ok: false, problem: 'an integer, as a string of digits' };
    case 'decimal':
      return typeof value === 'string' && DECIMAL.test(value) ? { ok: true, exact: decimal(value) } : { ok: false, problem: 'a decimal, as a string' };
    case 'boolean':
      return typeof value === 'boolean' ? { ok: true, exact: { units: value ? 1n : 0n, scale: 0 } } : { ok: false, problem: 'true or false' };
    case 'duration':
      return typeof value === 'string' ? duration(value) : { ok: false, problem: 'an ISO-8601 duration' };
    case 'enum': {
      const index = typeof value === 'string' ? (def.enumValues ?? []).indexOf(value) : -1;
      return index >= 0 ? { ok: true, exact: { units: BigInt(index), scale: 0 } } : { ok: false, problem: `one of ${(def.enumValues ?? []).join(', ')}` };
    }
    default: {
      const unknown: never = def.type;
      return { ok: false, problem: `a value of unknown type ${String(unknown)}` };
    }
  }
}

/** Negative, zero or positive as a is below, equal to or above b. */
export function compareExact(a: Exact, b: Exact): number {
  const scale = Math.max(a.scale, b.scale);
  const left = a.units * 10n ** BigInt(scale - a.scale);
  const right = b.units * 10n ** BigInt(scale - b.scale);
  return left === right ? 0 : left < right ? -1 : 1;
}

function decimal(text: string): Exact {
  const [whole = '0', fraction = ''] = text.split('.');
  return { units: BigInt(`${whole}${fraction}`), scale: fraction.length };
}

function duration(text: string): ParsedPolicyValue {
  const match = DURATION.exec(text);
  if (match === null || text === 'P' || text.endsWith('T')) {
    return { ok: false, problem: 'an ISO-8601 duration in weeks, days, hours, minutes and seconds (PT5M, P30D)' };
  }
  const seconds = match.slice(1).reduce((sum, part, index) => sum + (part === undefined ? 0n : BigInt(part) * DURATION_SECONDS[index]!), 0n);
  return { ok: true, exact: { units: seconds, scale: 0 } };
}
