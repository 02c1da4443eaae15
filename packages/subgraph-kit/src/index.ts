export * from './config.js';
export * from './database.js';
export * from './server.js';
export * from './main.js';
export * from './scalars.js';
export * from './http-routes.js';
export { actorOf, Outbox, type OutboxSource, type RawSqlTransaction } from './outbox.js';
export * from './access-control.js';
