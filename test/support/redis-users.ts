import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config';
import type { StoreClients } from '../../src/store-clients';

/** A Redis user of its own, and how to be it and to remove it again. */
export interface RedisTestUser {
  user: string;
  /** `REDIS_URL` for a worker that should act as this user. */
  env: NodeJS.ProcessEnv;
  cleanup: () => Promise<void>;
}

/**
 * A Redis user that may read cache keys but not delete them, while sessions stay writable (revoking
 * them comes before the point of no return): the deletion's Redis purge then fails every round.
 */
export async function readOnlyCacheUser(admin: StoreClients, prefix: string): Promise<RedisTestUser> {
  const user = `${prefix}_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  await admin.redis.call(
    'ACL',
    'SETUSER',
    user,
    'on',
    `>${password}`,
    'resetkeys',
    '~session*',
    '%R~cache:*',
    '&*',
    '+@all',
  );
  const url = new URL(loadConfig().redis.url);
  url.username = user;
  url.password = password;
  return {
    user,
    env: { REDIS_URL: url.toString() },
    cleanup: async () => void (await admin.redis.call('ACL', 'DELUSER', user).catch(() => undefined)),
  };
}
