import { readFileSync } from 'node:fs';
import { chainStep, EXACT_UNITS_PER_MINOR, exactUnitsOf, floorDiv, formatExact, postedFor, ratesExactly, scaledPrice } from './rating-amounts.js';

const D = EXACT_UNITS_PER_MINOR;

describe('exact usage amounts', () => {
  it('counts 10^12 * 3600 exact units in a minor unit', () => {
    expect(D).toBe(3_600_000_000_000_000n);
  });

  it('reads unit prices exactly, as the database returns them and canonical', () => {
    expect(scaledPrice('0.400000000000')).toBe(400_000_000_000n);
    expect(scaledPrice('0.4')).toBe(400_000_000_000n);
    expect(scaledPrice('412.123456789012')).toBe(412_123_456_789_012n);
    expect(scaledPrice('3')).toBe(3n * 10n ** 12n);
    expect(scaledPrice('0.000000000001')).toBe(1n);
    // DECIMAL(30,12) holds 18 integer digits: more than a double keeps exactly.
    expect(scaledPrice('123456789012345678.123456789012')).toBe(123_456_789_012_345_678_123_456_789_012n);
    for (const bad of ['', '-1', '1.', '.5', '01', '1.0000000000001', '1e3', ' 1']) expect(() => scaledPrice(bad)).toThrow(RangeError);
  });

  it('prices a quantity of base units exactly, whatever the base units per unit', () => {
    // 3 requests at 0.4 minor units each: 1.2 minor units.
    expect(exactUnitsOf(3n, '0.4', 1)).toBe((12n * D) / 10n);
    // 5400 GPU-seconds (1.5 h) at 250.5 per gpu_hour: 375.75 minor units.
    expect(exactUnitsOf(5_400n, '250.5', 3600)).toBe((37_575n * D) / 100n);
    // One GPU-second at 1 minor unit per hour: 1/3600 of a minor unit, an integer number of exact units.
    expect(exactUnitsOf(1n, '1', 3600)).toBe(D / 3600n);
    expect(exactUnitsOf(1n, '0.000000000001', 3600)).toBe(1n);
    expect(exactUnitsOf(-60n, '3600', 3600)).toBe(-60n * D);
    expect(() => exactUnitsOf(1n, '1', 7)).toThrow(RangeError);
  });

  it('floors toward negative infinity', () => {
    expect(floorDiv(7n, 2n)).toBe(3n);
    expect(floorDiv(-7n, 2n)).toBe(-4n);
    expect(floorDiv(-8n, 2n)).toBe(-4n);
    expect(floorDiv(7n, -2n)).toBe(-4n);
    expect(floorDiv(0n, 5n)).toBe(0n);
    expect(() => floorDiv(1n, 0n)).toThrow(RangeError);
    expect(postedFor(D - 1n)).toBe(0n);
    expect(postedFor(-1n)).toBe(-1n);
  });

  it('posts floor(exact total) minus what was posted: three events of 0.4 post 0, 0, 1 and the remainder stays', () => {
    const line = exactUnitsOf(1n, '0.4', 1);
    let state = { exactUnits: 0n, posted: 0n };
    const deltas: bigint[] = [];
    for (let i = 0; i < 3; i += 1) {
      const step = chainStep(state, line);
      deltas.push(step.delta);
      state = { exactUnits: step.exactUnits, posted: step.posted };
    }
    expect(deltas).toEqual([0n, 0n, 1n]);
    expect(state).toEqual({ exactUnits: (12n * D) / 10n, posted: 1n });
    // A negative line (a close adjustment) credits back only whole units the chain no longer earns.
    const back = chainStep(state, -line);
    expect(back).toEqual({ exactUnits: (8n * D) / 10n, posted: 0n, delta: -1n });
  });

  it('formats exact units as a 12-place decimal of minor units', () => {
    expect(formatExact(exactUnitsOf(3n, '0.4', 1))).toBe('1.200000000000');
    expect(formatExact(exactUnitsOf(1n, '1', 3600))).toBe('0.000277777777');
    expect(formatExact(-exactUnitsOf(1n, '1', 3600))).toBe('-0.000277777777');
    expect(formatExact(1n)).toBe('0.000000000000');
    expect(formatExact(-1n)).toBe('0.000000000000');
    expect(formatExact(0n)).toBe('0.000000000000');
  });

  it('rates every unit of the registry exactly: each base_per_unit divides 3600', () => {
    const registry = JSON.parse(readFileSync(new URL('../../../../packages/contracts/registry/usage-units.json', import.meta.url), 'utf8')) as {
      id: string;
      version: number;
      basePerUnit: number;
    }[];
    expect(registry.length).toBeGreaterThan(0);
    expect(registry.filter((unit) => !ratesExactly(unit.basePerUnit)).map((unit) => `${unit.id}@${unit.version}`)).toEqual([]);
    expect(ratesExactly(7)).toBe(false);
    expect(ratesExactly(0)).toBe(false);
  });
});
