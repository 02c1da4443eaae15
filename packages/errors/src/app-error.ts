import { ERROR_CODES, type ErrorClass, type ErrorCode } from './codes.js';

export interface AppErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
}

/**
 * The one error type of the platform. Domain code throws it; the edge maps it
 * once into GraphQL `extensions` or a REST envelope. `message` is safe to show
 * a client; `cause` is for logs only.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.details = options.details;
  }

  get errorClass(): ErrorClass {
    return ERROR_CODES[this.code].class;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }
}

export function isAppError(value: unknown): value is AppError {
  return value instanceof AppError;
}

/** What a client may see of any error: never a stack, never a cause. */
export interface PublicError {
  code: ErrorCode;
  message: string;
  correlationId: string;
}

export function toPublicError(error: unknown, correlationId: string): PublicError {
  if (isAppError(error)) return { code: error.code, message: error.message, correlationId };
  return { code: 'INTERNAL_ERROR', message: 'Internal error', correlationId };
}
