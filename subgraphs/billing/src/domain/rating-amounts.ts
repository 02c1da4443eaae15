/**
 * Exact usage amounts (ARCHITECTURE.md, Decisions: Money). A unit price is
 * DECIMAL(30,12) minor units per unit and a quantity is integer base units
 * (a GPU-second is 1/3600 of a gpu_hour), so a line's amount is a fraction
 * of a minor unit whose denominator divides 10^12 * 3600. Rating keeps it as
 * an integer count of those fractions ("exact units") and posts only whole
 * minor units: each step of a remainder chain posts floor(exact total) minus
 * what the chain posted before, so no fraction is ever rounded twice or lost
 * before the month closes.
 */

/** Twelve decimals of a minor unit: unit prices are stored to that precision. */
const PRICE_SCALE = 10n ** 12n;
/** Seconds in an hour: every registered base_per_unit divides it (the registry test checks). */
const UNIT_SPAN = 3600;

/** Exact units in one minor unit: 10^12 * 3600. */
export const EXACT_UNITS_PER_MINOR = PRICE_SCALE * BigInt(UNIT_SPAN);

const UNIT_PRICE = /^(0|[1-9][0-9]*)(?:\.([0-9]{1,12}))?$/;

/** A unit price as the database's text (`0.400000000000`) or canonical (`0.4`), times 10^12, exactly. */
export function scaledPrice(unitPrice: string): bigint {
  const match = UNIT_PRICE.exec(unitPrice);
  if (!match) throw new RangeError(`not a unit price with at most 12 decimals: ${unitPrice}`);
  const fraction = (match[2] ?? '').padEnd(12, '0');
  return BigInt(match[1]!) * PRICE_SCALE + BigInt(fraction);
}

/** Whether rating can price a unit with this many base units per unit exactly. */
export function ratesExactly(basePerUnit: number): boolean {
  return Number.isInteger(basePerUnit) && basePerUnit > 0 && UNIT_SPAN % basePerUnit === 0;
}

/**
 * What `quantity` base units cost at `unitPrice` minor units per unit of
 * `basePerUnit` base units, in exact units: quantity / basePerUnit * price
 * = quantity * (price * 10^12) * (3600 / basePerUnit) / EXACT_UNITS_PER_MINOR.
 * Negative quantities (a close adjustment) give negative amounts.
 */
export function exactUnitsOf(quantity: bigint, unitPrice: string, basePerUnit: number): bigint {
  if (!ratesExactly(basePerUnit)) throw new RangeError(`base_per_unit ${basePerUnit} does not divide ${UNIT_SPAN}`);
  return quantity * scaledPrice(unitPrice) * BigInt(UNIT_SPAN / basePerUnit);
}

/** a / b rounded toward negative infinity (bigint division truncates toward zero). */
export function floorDiv(a: bigint, b: bigint): bigint {
  if (b === 0n) throw new RangeError('division by zero');
  const quotient = a / b;
  return (a % b !== 0n && (a < 0n) !== (b < 0n)) ? quotient - 1n : quotient;
}

/** Whole minor units a chain has earned once its exact total is `exactTotal`: never rounded up. */
export function postedFor(exactTotal: bigint): bigint {
  return floorDiv(exactTotal, EXACT_UNITS_PER_MINOR);
}

/**
 * One remainder-chain step: what it posts (negative: credited back) after
 * the chain's exact total moved from `before` to `before + added`, given
 * that the chain posted `postedBefore` so far.
 */
export function chainStep(before: { exactUnits: bigint; posted: bigint }, added: bigint): { exactUnits: bigint; posted: bigint; delta: bigint } {
  const exactUnits = before.exactUnits + added;
  const posted = postedFor(exactUnits);
  return { exactUnits, posted, delta: posted - before.posted };
}

/**
 * Exact units as a decimal of minor units with 12 places, for display
 * (`0.400000000000`); digits past the 12th are cut off toward zero, so a
 * negative amount reads as the positive one with a minus sign.
 */
export function formatExact(units: bigint): string {
  const negative = units < 0n;
  const scaled = (negative ? -units : units) / BigInt(UNIT_SPAN);
  const whole = scaled / PRICE_SCALE;
  const fraction = (scaled % PRICE_SCALE).toString().padStart(12, '0');
  return `${negative && scaled !== 0n ? '-' : ''}${whole}.${fraction}`;
}
