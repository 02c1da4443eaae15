import type { z } from 'zod';
import { AppError } from './app-error.js';

/**
 * Validates input against a schema, or throws BAD_REQUEST_INVALID_INPUT
 * naming the first field that is wrong. Domain services call it before any
 * write, so bad input never reaches the database.
 */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue && issue.path.length > 0 ? issue.path.join('.') : 'input';
  throw new AppError('BAD_REQUEST_INVALID_INPUT', `${field} ${issue?.message ?? 'is invalid'}`, { cause: result.error });
}
