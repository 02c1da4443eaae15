export * from './app-error.js';
export { parseInput } from './input.js';
