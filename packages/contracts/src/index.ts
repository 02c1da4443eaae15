export * from './envelope.js';
export * from './subjects.js';
export * from './streams.js';
export * from './events/index.js';
export * from './registry-data.js';
export * from './resource-id.js';
export * from './name-uuid.js';
