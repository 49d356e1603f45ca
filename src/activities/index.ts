import type { AppConfig } from '../config';
import type { StoreClients } from '../store-clients';
import { createClickHouseActivities } from './clickhouse';
import { createPostgresActivities } from './postgres';
import { createQueueActivities } from './queue';
import { createRedisActivities } from './redis';

/** Every activity of the worker, built from the injected store clients. */
export function createActivities(config: AppConfig, clients: StoreClients) {
  const timeoutMs = config.preflightTimeoutMs;
  return {
    ...createPostgresActivities({ postgres: clients.postgres, postgresUrl: config.postgres.url, timeoutMs }),
    ...createClickHouseActivities({ clickhouse: clients.clickhouse, clickhouseUrl: config.clickhouse.url, timeoutMs }),
    ...createQueueActivities({ nats: clients.nats, timeoutMs }),
    ...createRedisActivities({ redis: clients.redis, redisUrl: config.redis.url, timeoutMs }),
  };
}

export type Activities = ReturnType<typeof createActivities>;
