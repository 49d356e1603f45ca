import type { Redis } from 'ioredis';
import type { OrganizationDataMap } from './data-map';
import { scanRedisKeys } from './discovery';
import { formatHash, hash60, HASH_MODULUS } from './content-hash';
import type { ObjectFingerprint } from './fingerprint';

/** The value of one key as stable text: members and fields sorted, so write order does not matter. */
async function valueText(redis: Redis, key: string, type: string): Promise<string> {
  switch (type) {
    case 'string':
      return (await redis.get(key)) ?? '';
    case 'set':
      return JSON.stringify((await redis.smembers(key)).sort());
    case 'hash':
      return JSON.stringify(Object.entries(await redis.hgetall(key)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    case 'list':
      return JSON.stringify(await redis.lrange(key, 0, -1));
    case 'zset':
      return JSON.stringify(await redis.zrange(key, 0, -1, 'WITHSCORES'));
    default:
      // Streams and module types: the type alone (and the key) still shows presence.
      return '';
  }
}

/**
 * Fingerprints the organization's keys, one object per key pattern: key count and a hash over key
 * (id mapped out), type, value and whether it expires. TTL values are left out: they tick down.
 * Keys are found with SCAN, never KEYS.
 */
export async function fingerprintRedis(redis: Redis, map: OrganizationDataMap): Promise<ObjectFingerprint[]> {
  const objects: ObjectFingerprint[] = [];
  for (const { pattern, template } of map.redis.patterns) {
    const keys = await scanRedisKeys(redis, pattern);
    let sum = 0n;
    let rows = 0;
    for (let i = 0; i < keys.length; i += 500) {
      const batch = keys.slice(i, i + 500);
      const meta = redis.pipeline();
      for (const key of batch) meta.type(key).pttl(key);
      const answers = (await meta.exec()) ?? [];
      await Promise.all(
        batch.map(async (key, j) => {
          const type = String(answers[2 * j]?.[1] ?? 'none');
          if (type === 'none') return; // expired between SCAN and TYPE
          const expires = Number(answers[2 * j + 1]?.[1] ?? -1) >= 0;
          const value = await valueText(redis, key, type);
          sum = (sum + hash60(map.mapOrgOut(key), type, value, expires ? 'expires' : 'persistent')) % HASH_MODULUS;
          rows++;
        }),
      );
    }
    objects.push({ store: 'redis', object: `redis:${template}`, rows, hash: formatHash(sum) });
  }
  return objects;
}
