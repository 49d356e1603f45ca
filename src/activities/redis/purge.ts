import type { Redis } from 'ioredis';
import type { RemovedCounts } from '../../contracts/deletion';
import type { OrganizationDataMap } from '../../platform/data-map';
import { scanRedisKeys } from '../../platform/discovery';

/** UNLINK frees memory in the background: a large organization does not block Redis as DEL would. */
const UNLINK_BATCH = 500;

async function unlinkAll(redis: Redis, keys: readonly string[]): Promise<number> {
  let removed = 0;
  for (let i = 0; i < keys.length; i += UNLINK_BATCH) removed += await redis.unlink(...keys.slice(i, i + UNLINK_BATCH));
  return removed;
}

/**
 * Revokes every session of the organization: the sessions named in its session index, any other
 * key under its session prefix (found with SCAN, never KEYS: a session the index missed must not
 * survive), and the index itself. Idempotent.
 * @returns the number of keys removed (sessions plus the index).
 */
export async function revokeOrganizationSessions(redis: Redis, map: OrganizationDataMap): Promise<number> {
  const indexed = await redis.smembers(map.redis.sessionIndexKey);
  const scanned = await scanRedisKeys(redis, `${map.redis.sessionKeyPrefix}*`);
  const keys = [...new Set([...indexed.map((sid) => `${map.redis.sessionKeyPrefix}${sid}`), ...scanned])];
  // The index goes last: if this is interrupted, a retry still finds the sessions it lists.
  return (await unlinkAll(redis, keys)) + (await unlinkAll(redis, [map.redis.sessionIndexKey]));
}

/**
 * Removes every key of the organization: each pattern of the data map with SCAN + UNLINK, then its
 * sessions (in case the session prefix is not among the patterns). Patterns end at a delimiter
 * (`cache:<id>:*`), so a prefix neighbour's keys never match. Idempotent.
 * @returns `keys` removed in total and per pattern.
 */
export async function purgeOrganizationRedis(redis: Redis, map: OrganizationDataMap): Promise<RemovedCounts> {
  const removed: RemovedCounts = { keys: 0 };
  for (const { pattern, template } of map.redis.patterns) {
    const count = await unlinkAll(redis, await scanRedisKeys(redis, pattern));
    removed[template] = count;
    removed.keys = (removed.keys ?? 0) + count;
  }
  removed.keys = (removed.keys ?? 0) + (await revokeOrganizationSessions(redis, map));
  return removed;
}
