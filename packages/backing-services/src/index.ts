export { closeRedis, connectRedis, type RedisOptions } from './redis.js';
export { connectNats, drainNats, type NatsOptions } from './nats.js';
export {
  checkReadiness,
  natsCheck,
  postgresCheck,
  redisCheck,
  type DependencyCheck,
  type DependencyStatus,
  type ReadinessReport,
} from './readiness.js';
