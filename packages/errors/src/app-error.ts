/**
 * The one error type of the platform. Domain code throws it; the edge maps it
 * once into GraphQL `extensions` or a REST envelope. `message` is safe to show
 * a client; `cause` is for logs only.
 */
export type ErrorClass =
  | 'validation'
  | 'authn'
  | 'authz'
  | 'not_found'
  | 'conflict'
  | 'database'
  | 'upstream'
  | 'local_defect'
  | 'provider_runtime'
  | 'retryable_infra';

export interface AppErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
}

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

interface CodeSpec {
  class: ErrorClass;
  http: number;
}

/**
 * The registry of stable codes. Adding a code here is the only way to make a
 * new one; clients may rely on every code listed staying stable.
 */
export const ERROR_CODES = {
  BAD_REQUEST_MALFORMED_JSON: { class: 'validation', http: 400 },
  BAD_REQUEST_UNSUPPORTED_CONTENT_TYPE: { class: 'validation', http: 415 },
  BAD_REQUEST_METHOD_NOT_ALLOWED: { class: 'validation', http: 405 },
  BAD_REQUEST_BODY_TOO_LARGE: { class: 'validation', http: 413 },
  BAD_REQUEST_INVALID_INPUT: { class: 'validation', http: 400 },
  GRAPHQL_PARSE_FAILED: { class: 'validation', http: 400 },
  GRAPHQL_VALIDATION_FAILED: { class: 'validation', http: 400 },
  GRAPHQL_UNKNOWN_OPERATION: { class: 'validation', http: 400 },
  GRAPHQL_BAD_REQUEST: { class: 'validation', http: 400 },
  NOT_FOUND: { class: 'not_found', http: 404 },
  AUTH_UNAUTHENTICATED: { class: 'authn', http: 401 },
  AUTH_FORBIDDEN: { class: 'authz', http: 403 },
  INTERNAL_AUTH_UNAUTHENTICATED: { class: 'authn', http: 401 },
  CONFLICT: { class: 'conflict', http: 409 },
  DATABASE_UNAVAILABLE: { class: 'retryable_infra', http: 503 },
  DATABASE_ERROR: { class: 'database', http: 500 },
  UPSTREAM_UNAVAILABLE: { class: 'upstream', http: 502 },
  SERVICE_NOT_READY: { class: 'retryable_infra', http: 503 },
  MIGRATION_REFUSED: { class: 'local_defect', http: 500 },
  INTERNAL_ERROR: { class: 'local_defect', http: 500 },
} as const satisfies Record<string, CodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

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
