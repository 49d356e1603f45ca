import type { Redis } from 'ioredis';
import { addressOf } from '../../config';
import type { StoreProbe } from '../../contracts/preflight';
import { organizationDataMap, type PlatformModel } from '../../platform/data-map';
import { scanRedisKeys } from '../../platform/discovery';
import { probeStore } from '../support/probe';

export interface RedisActivityDeps {
  redis: Redis;
  redisUrl: string;
  timeoutMs: number;
  model: PlatformModel;
}

/** Reads `field:value` lines of Redis INFO into a map. */
export function parseRedisInfo(info: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of info.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

export function createRedisActivities(deps: RedisActivityDeps) {
  return {
    /** Reachability, version and round-trip time of Redis. */
    async probeRedis(): Promise<StoreProbe> {
      return probeStore('redis', addressOf(deps.redisUrl), deps.timeoutMs, async () => {
        await deps.redis.ping();
        const info = parseRedisInfo(await deps.redis.info('server'));
        return { version: info.get('redis_version') ?? 'unknown' };
      });
    },

    /** Keys of the organization per pattern (recorded in a backup's manifest as left out). */
    async countRedisKeys(orgId: string): Promise<Array<{ pattern: string; keys: number }>> {
      const map = organizationDataMap(orgId, deps.model);
      const counts: Array<{ pattern: string; keys: number }> = [];
      for (const pattern of map.redis.keyPatterns)
        counts.push({ pattern, keys: (await scanRedisKeys(deps.redis, pattern)).length });
      return counts;
    },
  };
}
