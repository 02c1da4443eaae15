export * from './database.js';
export * from './keys.js';
export * from './logs.js';
export * from './redis.js';
export * from './nats.js';
export * from './event-streams.js';
export { freePort } from './server-process.js';
export { startTcpProxy, type TcpProxy, type TcpProxyOptions } from './tcp-proxy.js';
export { webSocketWithHeaders, type WebSocketClass } from './websocket.js';
