import type { PolicyKeyDef } from './model.js';
import { compareExact, parsePolicyValue } from './policy-values.js';

const def = (type: PolicyKeyDef['type'], enumValues: string[] | null = null): PolicyKeyDef => ({
  key: 'test.some.key',
  type,
  unit: null,
  default: '0',
  direction: 'ceiling',
  application: 'per_project',
  enumValues,
  description: 'test',
  lifecycle: 'active',
});

function exact(type: PolicyKeyDef['type'], value: unknown, enumValues: string[] | null = null) {
  const parsed = parsePolicyValue(def(type, enumValues), value);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.exact;
}

describe('parsePolicyValue and compareExact', () => {
  it('compares decimals of different scales exactly, beyond float precision', () => {
    expect(compareExact(exact('decimal', '0.1'), exact('decimal', '0.10'))).toBe(0);
    expect(compareExact(exact('decimal', '9007199254740993'), exact('decimal', '9007199254740992.999'))).toBe(1);
    expect(compareExact(exact('decimal', '-1.5'), exact('decimal', '-1.25'))).toBe(-1);
  });

  it('compares integers as big integers', () => {
    expect(compareExact(exact('integer', '18446744073709551617'), exact('integer', '18446744073709551616'))).toBe(1);
  });

  it('turns durations into seconds', () => {
    expect(exact('duration', 'PT5M')).toEqual({ units: 300n, scale: 0 });
    expect(exact('duration', 'P30D')).toEqual({ units: 2_592_000n, scale: 0 });
    expect(exact('duration', 'P1W2DT3H4M5S')).toEqual({ units: BigInt(9 * 86_400 + 3 * 3_600 + 4 * 60 + 5), scale: 0 });
  });

  it('orders enums by their registered order and booleans false before true', () => {
    expect(compareExact(exact('enum', 'small', ['small', 'large']), exact('enum', 'large', ['small', 'large']))).toBe(-1);
    expect(compareExact(exact('boolean', false), exact('boolean', true))).toBe(-1);
  });

  it('says what a key takes when a value does not fit', () => {
    expect(parsePolicyValue(def('enum', ['a', 'b']), 'c')).toEqual({ ok: false, problem: 'one of a, b' });
    expect(parsePolicyValue(def('integer'), 7)).toEqual({ ok: false, problem: 'an integer, as a string of digits' });
  });
});
