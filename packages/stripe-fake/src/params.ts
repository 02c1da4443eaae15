/**
 * Stripe's request parameters: the `stripe` library sends
 * application/x-www-form-urlencoded bodies (and query strings) with bracket
 * keys, `line_items[0][price_data][unit_amount]=500`; the API reads them as
 * nested objects and arrays of strings. Refusals are Stripe-shaped errors.
 */

export type StripeErrorType = 'api_error' | 'card_error' | 'idempotency_error' | 'invalid_request_error';

/** A Stripe API error answer: `{ error: { type, code, message, param } }` with its HTTP status. */
export class StripeFailure extends Error {
  constructor(
    readonly status: number,
    readonly type: StripeErrorType,
    message: string,
    readonly code?: string,
    readonly param?: string,
    /**
     * Stripe keeps the answer under the request's idempotency key only once
     * the endpoint began executing: a request refused by parameter validation
     * stores nothing, so the same key may be used again.
     */
    readonly executed = true,
  ) {
    super(message);
  }

  toJSON(): { error: Record<string, string> } {
    const error: Record<string, string> = { type: this.type, message: this.message };
    if (this.code !== undefined) error.code = this.code;
    if (this.param !== undefined) error.param = this.param;
    return { error };
  }
}

export function parameterMissing(param: string): StripeFailure {
  return new StripeFailure(400, 'invalid_request_error', `Missing required param: ${param}.`, 'parameter_missing', param, false);
}

export function parameterInvalid(param: string, message: string, code = 'parameter_invalid_string'): StripeFailure {
  return new StripeFailure(400, 'invalid_request_error', message, code, param, false);
}

export function resourceMissing(kind: string, id: string, param: string, status = 400): StripeFailure {
  return new StripeFailure(status, 'invalid_request_error', `No such ${kind}: '${id}'`, 'resource_missing', param);
}

export type Params = Record<string, unknown>;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** `a[b][0][c]=v&...` into `{ a: { b: [{ c: 'v' }] } }`. */
export function parseStripeForm(text: string): Params {
  const root: Params = {};
  if (text.length === 0) return root;
  for (const pair of text.split('&')) {
    if (pair.length === 0) continue;
    const separator = pair.indexOf('=');
    const rawKey = separator === -1 ? pair : pair.slice(0, separator);
    const rawValue = separator === -1 ? '' : pair.slice(separator + 1);
    const key = decodeFormComponent(rawKey);
    const match = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
    if (!match) throw parameterInvalid(key, `Invalid parameter name: ${key}`, 'parameter_unknown');
    const segments = [match[1]!, ...[...match[2]!.matchAll(/\[([^[\]]*)\]/g)].map((segment) => segment[1]!)];
    if (segments.some((segment) => FORBIDDEN_KEYS.has(segment))) throw parameterInvalid(key, `Invalid parameter name: ${key}`, 'parameter_unknown');
    assign(root, segments, decodeFormComponent(rawValue), key);
  }
  return root;
}

function decodeFormComponent(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    throw parameterInvalid(text, `Invalid URL encoding: ${text}`);
  }
}

function assign(root: Params, segments: string[], value: string, key: string): void {
  let container: Params | unknown[] = root;
  for (let index = 0; index < segments.length; index += 1) {
    const segment = segments[index]!;
    const last = index === segments.length - 1;
    const slot: string | number = Array.isArray(container) ? arraySlot(container, segment, key) : segment;
    const existing = (container as Record<string | number, unknown>)[slot];
    if (last) {
      if (existing !== undefined) throw parameterInvalid(key, `Received ${key} more than once`, 'parameter_invalid_duplicate');
      (container as Record<string | number, unknown>)[slot] = value;
      return;
    }
    const wantsArray = /^\d*$/.test(segments[index + 1]!);
    if (existing === undefined) {
      const created: Params | unknown[] = wantsArray ? [] : {};
      (container as Record<string | number, unknown>)[slot] = created;
      container = created;
    } else if (typeof existing === 'object' && existing !== null && Array.isArray(existing) === wantsArray) {
      container = existing as Params | unknown[];
    } else {
      throw parameterInvalid(key, `Conflicting values for ${key}`, 'parameter_invalid_duplicate');
    }
  }
}

function arraySlot(array: unknown[], segment: string, key: string): number {
  if (segment === '') return array.length;
  const index = Number(segment);
  // Stripe caps arrays well below this; a huge index would only allocate.
  if (!Number.isSafeInteger(index) || index > 1_000) throw parameterInvalid(key, `Invalid array index in ${key}`, 'parameter_invalid_integer');
  return index;
}

/** The same parameters, whatever order their keys came in: what the idempotency check compares. */
export function canonicalParams(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalParams).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalParams(item)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** Typed reads of one request's parameters, refusing like Stripe does. */
export class ParamReader {
  constructor(
    private readonly params: Params,
    private readonly prefix = '',
  ) {}

  private name(key: string): string {
    return this.prefix === '' ? key : `${this.prefix}[${key}]`;
  }

  has(key: string): boolean {
    return this.params[key] !== undefined;
  }

  string(key: string): string | undefined {
    const value = this.params[key];
    if (value === undefined || value === '') return undefined;
    if (typeof value !== 'string') throw parameterInvalid(this.name(key), `Invalid string: ${this.name(key)}`);
    return value;
  }

  requiredString(key: string): string {
    const value = this.string(key);
    if (value === undefined) throw parameterMissing(this.name(key));
    return value;
  }

  integer(key: string, minimum = 0): number | undefined {
    const value = this.string(key);
    if (value === undefined) return undefined;
    const parsed = /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(parsed)) throw parameterInvalid(this.name(key), `Invalid integer: ${value}`, 'parameter_invalid_integer');
    if (parsed < minimum) throw parameterInvalid(this.name(key), `This value must be greater than or equal to ${minimum}.`, 'parameter_invalid_integer');
    return parsed;
  }

  object(key: string): ParamReader | undefined {
    const value = this.params[key];
    if (value === undefined || value === '') return undefined;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw parameterInvalid(this.name(key), `Invalid object: ${this.name(key)}`, 'parameter_invalid_object');
    return new ParamReader(value as Params, this.name(key));
  }

  array(key: string): ParamReader[] | undefined {
    const value = this.params[key];
    if (value === undefined || value === '') return undefined;
    if (!Array.isArray(value)) throw parameterInvalid(this.name(key), `Invalid array: ${this.name(key)}`, 'parameter_invalid_array');
    return value.map((item, index) => {
      if (typeof item !== 'object' || item === null || Array.isArray(item)) throw parameterInvalid(`${this.name(key)}[${index}]`, `Invalid object: ${this.name(key)}[${index}]`, 'parameter_invalid_object');
      return new ParamReader(item as Params, `${this.name(key)}[${index}]`);
    });
  }

  /** Stripe metadata: string values; an empty value unsets its key. */
  metadata(key = 'metadata'): Record<string, string> {
    const reader = this.object(key);
    if (!reader) return {};
    const metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(reader.params)) {
      if (typeof value !== 'string') throw parameterInvalid(`${this.name(key)}[${name}]`, `Invalid metadata value: ${this.name(key)}[${name}]`);
      if (value !== '') metadata[name] = value;
    }
    return metadata;
  }
}
