export * from './principal.js';
export * from './keys.js';
export * from './internal-jwt.js';
