export * from './principal.js';
export * from './keys.js';
export * from './key-files.js';
export * from './internal-jwt.js';
export * from './service-identity.js';
export * from './service-token.js';
export * from './api-key-format.js';
export * from './pepper.js';
