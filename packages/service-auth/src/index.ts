export * from './principal.js';
export * from './keys.js';
export * from './internal-jwt.js';
export * from './api-key-format.js';
export * from './pepper.js';
