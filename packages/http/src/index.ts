export * from './server.js';
export * from './body.js';
export * from './responses.js';
export * from './graphql-http.js';
export * from './graphql-errors.js';
export * from './idempotency-key.js';
