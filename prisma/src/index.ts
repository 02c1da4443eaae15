export * from './layout.js';
export * from './config.js';
export * from './bootstrap.js';
export * from './migrations.js';
export * from './drift.js';
export * from './targets.js';
