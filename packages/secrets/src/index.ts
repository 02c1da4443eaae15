export * from './purposes.js';
export * from './files.js';
export * from './pepper-rotation.js';
export * from './internal-jwt-rotation.js';
export * from './iam-database.js';
export { runRotate, parseArguments, USAGE, DEV_KEYS_DIR, type CliIo } from './cli.js';
