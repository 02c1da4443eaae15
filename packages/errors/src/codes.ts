/**
 * Every error code the platform can answer with, `<DOMAIN>_<REASON>`, its
 * HTTP status and its cause class. This file is the whole list.
 */
/** Seed 001's classification of causes: every code belongs to exactly one. */
export type ErrorClass =
  | 'validation'
  | 'authn'
  | 'authz'
  | 'database'
  | 'upstream'
  | 'local_defect'
  | 'provider_runtime'
  | 'retryable_infra';

interface CodeSpec {
  class: ErrorClass;
  http: number;
}

/**
 * The registry of stable codes. Adding a code here is the only way to make a
 * new one; clients may rely on every code listed staying stable.
 */
export const ERROR_CODES = {
  // Transport: the request itself is unusable.
  BAD_REQUEST_MALFORMED_JSON: { class: 'validation', http: 400 },
  BAD_REQUEST_UNSUPPORTED_CONTENT_TYPE: { class: 'validation', http: 415 },
  BAD_REQUEST_METHOD_NOT_ALLOWED: { class: 'validation', http: 405 },
  BAD_REQUEST_BODY_TOO_LARGE: { class: 'validation', http: 413 },
  BAD_REQUEST_INVALID_INPUT: { class: 'validation', http: 400 },
  BAD_REQUEST_CSRF_PREFLIGHT_REQUIRED: { class: 'validation', http: 400 },
  BAD_REQUEST_ORIGIN_NOT_ALLOWED: { class: 'authz', http: 403 },
  // GraphQL documents, refused before planning.
  GRAPHQL_PARSE_FAILED: { class: 'validation', http: 400 },
  GRAPHQL_VALIDATION_FAILED: { class: 'validation', http: 400 },
  GRAPHQL_UNKNOWN_OPERATION: { class: 'validation', http: 400 },
  GRAPHQL_BAD_REQUEST: { class: 'validation', http: 400 },
  GRAPHQL_DEPTH_LIMIT_EXCEEDED: { class: 'validation', http: 400 },
  GRAPHQL_HEIGHT_LIMIT_EXCEEDED: { class: 'validation', http: 400 },
  GRAPHQL_ALIAS_LIMIT_EXCEEDED: { class: 'validation', http: 400 },
  GRAPHQL_ROOT_FIELD_LIMIT_EXCEEDED: { class: 'validation', http: 400 },
  GRAPHQL_TOKEN_LIMIT_EXCEEDED: { class: 'validation', http: 400 },
  GRAPHQL_INTROSPECTION_FORBIDDEN: { class: 'authz', http: 403 },
  SUBSCRIPTION_CLIENT_TOO_SLOW: { class: 'validation', http: 429 },
  SUBSCRIPTION_SOURCE_UNAVAILABLE: { class: 'retryable_infra', http: 503 },
  // Edge policies.
  RATE_LIMIT_EXCEEDED: { class: 'validation', http: 429 },
  IDEMPOTENCY_KEY_INVALID: { class: 'validation', http: 400 },
  IDEMPOTENCY_KEY_REUSED: { class: 'validation', http: 422 },
  IDEMPOTENCY_REQUEST_IN_FLIGHT: { class: 'validation', http: 409 },
  IDEMPOTENCY_SECRET_ALREADY_SHOWN: { class: 'validation', http: 409 },
  IDEMPOTENCY_UNAVAILABLE: { class: 'retryable_infra', http: 503 },
  IDEMPOTENCY_KEY_REQUIRED: { class: 'validation', http: 400 },
  NOT_FOUND: { class: 'validation', http: 404 },
  AUTH_UNAUTHENTICATED: { class: 'authn', http: 401 },
  AUTH_FORBIDDEN: { class: 'authz', http: 403 },
  AUTH_CREDENTIAL_EXPIRED: { class: 'authn', http: 401 },
  INTERNAL_AUTH_UNAUTHENTICATED: { class: 'authn', http: 401 },
  RESOURCE_CONFLICT: { class: 'validation', http: 409 },
  // Authorization (IAM): scopes, roles, the access read model.
  AUTH_SCOPE_UNREGISTERED: { class: 'local_defect', http: 500 },
  AUTH_SCOPE_RETIRED: { class: 'authz', http: 403 },
  AUTH_ROLE_ESCALATION: { class: 'authz', http: 403 },
  AUTH_READ_MODEL_STALE: { class: 'retryable_infra', http: 503 },
  // API keys at the gateway: revoked, expired or rotated out only once the secret verified; anything else is unknown.
  AUTH_API_KEY_UNKNOWN: { class: 'authn', http: 401 },
  AUTH_API_KEY_REVOKED: { class: 'authn', http: 401 },
  AUTH_API_KEY_EXPIRED: { class: 'authn', http: 401 },
  AUTH_API_KEY_ROTATED_OUT: { class: 'authn', http: 401 },
  AUTH_API_KEY_SUSPENDED: { class: 'authn', http: 401 },
  AUTH_TOO_MANY_FAILURES: { class: 'authn', http: 429 },
  // Service-to-service tokens.
  INTERNAL_AUTH_SERVICE_DISABLED: { class: 'authn', http: 401 },
  INTERNAL_AUTH_SCOPE_NOT_ALLOWED: { class: 'authz', http: 403 },
  INTERNAL_AUTH_AUDIENCE_NOT_ALLOWED: { class: 'authz', http: 403 },
  // IAM's own rules.
  IAM_DUPLICATE: { class: 'validation', http: 409 },
  IAM_LAST_ORG_ADMIN: { class: 'validation', http: 409 },
  IAM_SCOPE_UNKNOWN: { class: 'validation', http: 422 },
  IAM_INVALID_ROLE_LEVEL: { class: 'validation', http: 422 },
  IAM_ARCHIVED: { class: 'validation', http: 409 },
  IAM_SELF_SERVICE_DISABLED: { class: 'authz', http: 403 },
  IAM_UNAVAILABLE: { class: 'upstream', http: 503 },
  IAM_API_KEY_SCOPE_NOT_HELD: { class: 'authz', http: 403 },
  IAM_API_KEY_EXPIRY_INVALID: { class: 'validation', http: 422 },
  IAM_API_KEY_GRACE_INVALID: { class: 'validation', http: 422 },
  IAM_API_KEY_NOT_ACTIVE: { class: 'validation', http: 409 },
  RESOURCE_ID_INVALID: { class: 'validation', http: 400 },
  // Billing: the ledger, reservations, registries.
  BILLING_AMOUNT_INVALID: { class: 'validation', http: 400 },
  BILLING_POSTING_INVALID: { class: 'validation', http: 400 },
  BILLING_POSTING_CONFLICT: { class: 'validation', http: 409 },
  BILLING_CURRENCY_MISMATCH: { class: 'validation', http: 422 },
  BILLING_PROMOTIONAL_EXPIRY_INVALID: { class: 'validation', http: 422 },
  BILLING_ACCOUNT_NOT_FOUND: { class: 'validation', http: 404 },
  BILLING_ORGANIZATION_UNKNOWN: { class: 'validation', http: 422 },
  BILLING_PROJECT_UNKNOWN: { class: 'validation', http: 422 },
  BILLING_PROJECT_ARCHIVED: { class: 'validation', http: 422 },
  BILLING_INSUFFICIENT_FUNDS: { class: 'validation', http: 402 },
  BILLING_BUDGET_EXCEEDED: { class: 'validation', http: 402 },
  BILLING_COMPACTION_BLOCKED: { class: 'validation', http: 409 },
  BILLING_RESERVATION_NOT_FOUND: { class: 'validation', http: 404 },
  BILLING_RESERVATION_TTL_INVALID: { class: 'validation', http: 422 },
  BILLING_USAGE_UNIT_UNKNOWN: { class: 'validation', http: 422 },
  BILLING_PRICE_BOOK_INVALID: { class: 'validation', http: 422 },
  BILLING_UNAVAILABLE: { class: 'upstream', http: 503 },
  // Payments: checkout, refunds, Stripe's webhooks.
  BILLING_CHECKOUT_AMOUNT_OUT_OF_BOUNDS: { class: 'validation', http: 422 },
  BILLING_REFUND_WINDOW_EXCEEDED: { class: 'validation', http: 422 },
  BILLING_REFUND_EXCEEDS_BALANCE: { class: 'validation', http: 422 },
  BILLING_REFUND_EXCEEDS_PAYMENT: { class: 'validation', http: 422 },
  BILLING_PAYMENT_NOT_REFUNDABLE: { class: 'validation', http: 409 },
  BILLING_PAYMENT_SESSION_NOT_FOUND: { class: 'validation', http: 404 },
  BILLING_WEBHOOK_EVENT_NOT_FOUND: { class: 'validation', http: 404 },
  BILLING_WEBHOOK_EVENT_NOT_DEAD: { class: 'validation', http: 409 },
  PAYMENT_PROVIDER_UNAVAILABLE: { class: 'upstream', http: 503 },
  PAYMENT_PROVIDER_REFUSED: { class: 'upstream', http: 502 },
  WEBHOOK_SIGNATURE_INVALID: { class: 'validation', http: 400 },
  // Policy and entitlements.
  POLICY_KEY_UNKNOWN: { class: 'validation', http: 422 },
  POLICY_VALUE_INVALID: { class: 'validation', http: 422 },
  POLICY_BOUND_VIOLATION: { class: 'validation', http: 422 },
  POLICY_SNAPSHOT_STALE: { class: 'retryable_infra', http: 503 },
  DATABASE_UNAVAILABLE: { class: 'retryable_infra', http: 503 },
  DATABASE_ERROR: { class: 'database', http: 500 },
  UPSTREAM_UNAVAILABLE: { class: 'upstream', http: 502 },
  UPSTREAM_TIMEOUT: { class: 'upstream', http: 504 },
  SERVICE_NOT_READY: { class: 'retryable_infra', http: 503 },
  SERVICE_SHUTTING_DOWN: { class: 'retryable_infra', http: 503 },
  MIGRATION_REFUSED: { class: 'local_defect', http: 500 },
  INTERNAL_ERROR: { class: 'local_defect', http: 500 },
} as const satisfies Record<string, CodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;
