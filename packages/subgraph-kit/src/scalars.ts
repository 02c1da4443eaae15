import { GraphQLScalarType, Kind } from 'graphql';
import { AppError } from '@aifactory/errors';

/** ISO-8601 instants with a zone; every subgraph declares `scalar DateTime`. */
export const DateTimeScalar = new GraphQLScalarType({
  name: 'DateTime',
  description: 'An instant in time, ISO-8601 with a zone offset.',
  serialize: (value) => {
    if (value instanceof Date) return value.toISOString();
    if (typeof value === 'string') return new Date(value).toISOString();
    throw new AppError('INTERNAL_ERROR', 'DateTime cannot represent this value');
  },
  parseValue: (value) => parseInstant(value),
  parseLiteral: (ast) => (ast.kind === Kind.STRING ? parseInstant(ast.value) : invalidInstant()),
});

function parseInstant(value: unknown): Date {
  if (typeof value !== 'string' || !/(Z|[+-]\d{2}:\d{2})$/.test(value)) return invalidInstant();
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? invalidInstant() : date;
}

function invalidInstant(): never {
  throw new AppError('BAD_REQUEST_INVALID_INPUT', 'DateTime must be an ISO-8601 string with a zone offset');
}
