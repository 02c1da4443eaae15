export { defineEvent, type EventDefinition, type EventKind } from './definition.js';
export * from './iam.js';
export * from './billing.js';
export * from './usage.js';
export * from './status.js';
export * from './audit.js';
export * from './registry.js';
