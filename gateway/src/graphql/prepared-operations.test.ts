import { buildSchema } from 'graphql';
import { DocumentRefused, PreparedOperations } from './prepared-operations.js';

const schema = buildSchema('type Query { hello: String, items: [Item!]! } type Item { id: ID! }');
const limits = { depth: 3, height: 10, aliases: 2, rootFields: 2, tokens: 50 };

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof DocumentRefused) return error.problems.map((problem) => problem.code);
    throw error;
  }
  return [];
}

describe('PreparedOperations', () => {
  it('prepares an operation once and answers the same object for the same text', () => {
    const operations = new PreparedOperations(schema, limits);
    const first = operations.prepare('query A { hello }', 'A');
    expect(first.operationName).toBe('A');
    expect(first.queryHash).toMatch(/^[0-9a-f]{64}$/);
    expect(operations.prepare('query A { hello }', 'A')).toBe(first);
  });

  it('names every exceeded limit, each with its own code, before validating', () => {
    expect(problemsOf(() => new PreparedOperations(schema, limits).prepare('{ a: hello b: hello c: hello nope }', undefined))).toEqual([
      'GRAPHQL_ALIAS_LIMIT_EXCEEDED',
      'GRAPHQL_ROOT_FIELD_LIMIT_EXCEEDED',
    ]);
  });

  it('refuses too many tokens, a parse error, an unknown operation and an invalid document with their codes', () => {
    const operations = new PreparedOperations(schema, limits);
    expect(problemsOf(() => operations.prepare(`{ items { ${'id '.repeat(60)}} }`, undefined))).toEqual(['GRAPHQL_TOKEN_LIMIT_EXCEEDED']);
    expect(problemsOf(() => operations.prepare('{ hello', undefined))).toEqual(['GRAPHQL_PARSE_FAILED']);
    expect(problemsOf(() => operations.prepare('query A { hello }', 'B'))).toEqual(['GRAPHQL_UNKNOWN_OPERATION']);
    expect(problemsOf(() => operations.prepare('{ nope }', undefined))).toEqual(['GRAPHQL_VALIDATION_FAILED']);
  });

  it('keeps its cache within the configured number of characters', () => {
    const operations = new PreparedOperations(schema, limits, 1_000, 200);
    const first = operations.prepare(`query A { hello } # ${'x'.repeat(100)}`, undefined);
    operations.prepare(`query B { hello } # ${'y'.repeat(100)}`, undefined);
    // The first text was evicted to make room, so it is prepared again as a new object.
    expect(operations.prepare(`query A { hello } # ${'x'.repeat(100)}`, undefined)).not.toBe(first);
  });
});
