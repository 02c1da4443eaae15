export * from './app-error.js';
export { ERROR_CODES, type ErrorClass, type ErrorCode } from './codes.js';
export { parseInput } from './input.js';
