import type { StoreClients } from '../store-clients';
import { DEFAULT_PLATFORM_MODEL, organizationDataMap, type PlatformModel } from './data-map';
import { fingerprintClickHouse } from './fingerprint-clickhouse';
import { CURRENT_CLICKHOUSE_ROW_HASH, CURRENT_POSTGRES_ROW_HASH, type RowHashes } from '../contracts/backup';
import { fingerprintPostgres } from './fingerprint-postgres';
import { fingerprintQueue } from './fingerprint-queue';
import { fingerprintRedis } from './fingerprint-redis';

/** The stores a fingerprint covers. */
export type FingerprintStore = 'postgres' | 'clickhouse' | 'queue' | 'redis';

/** Every store, in the order objects are listed. */
export const FINGERPRINT_STORES: readonly FingerprintStore[] = ['postgres', 'clickhouse', 'queue', 'redis'];

/**
 * The content of one object (table, sequence, stream, key pattern) of an organization.
 * `object` never contains the organization id (it reads `{org}` instead), and neither does the
 * hashed content, so a clone under another id has an equal fingerprint.
 */
export interface ObjectFingerprint {
  store: FingerprintStore;
  /** e.g. `schema:org_{org}.entity_definitions`, `shared:public.users`, `clickhouse:kg_nodes`, `queue:CHAT`, `redis:cache:{org}:*`. */
  object: string;
  /** Rows, messages or keys. */
  rows: number;
  /**
   * Order-independent content hash: the sum, modulo 2^64, of a 60-bit hash of every row (so
   * duplicates add up instead of cancelling), as 16 hex digits.
   */
  hash: string;
}

/** Every object of one organization, sorted by store then object name. */
export interface OrganizationFingerprint {
  orgId: string;
  /** ISO-8601 time the fingerprint was started. */
  takenAt: string;
  objects: ObjectFingerprint[];
}

/** One object that differs between two fingerprints; a side is missing when the object is. */
export interface FingerprintDifference {
  object: string;
  expected?: ObjectFingerprint;
  actual?: ObjectFingerprint;
}

/** What {@link compareFingerprints} found. */
export interface FingerprintComparison {
  equal: boolean;
  differences: FingerprintDifference[];
}

function sortObjects(objects: ObjectFingerprint[]): ObjectFingerprint[] {
  const rank = (s: FingerprintStore) => FINGERPRINT_STORES.indexOf(s);
  return [...objects].sort(
    (a, b) => rank(a.store) - rank(b.store) || (a.object < b.object ? -1 : a.object > b.object ? 1 : 0),
  );
}

/**
 * Fingerprints one organization in the given stores (all by default), stores in parallel.
 * @throws a non-retryable `InvalidOrganizationId` failure for an invalid id; store errors as thrown by the drivers.
 */
export async function fingerprintOrganization(
  clients: StoreClients,
  orgId: string,
  stores: readonly FingerprintStore[] = FINGERPRINT_STORES,
  model: PlatformModel = DEFAULT_PLATFORM_MODEL,
  options: RowHashes & { roleNames?: Record<string, string> } = {},
): Promise<OrganizationFingerprint> {
  const map = organizationDataMap(orgId, model);
  const takenAt = new Date().toISOString();
  const work: Record<FingerprintStore, () => Promise<ObjectFingerprint[]>> = {
    postgres: () =>
      fingerprintPostgres(clients.postgres, map, {
        rowHash: options.postgresRowHash ?? CURRENT_POSTGRES_ROW_HASH,
        ...(options.postgresPrivileges ? { privileges: options.postgresPrivileges } : {}),
        ...(options.roleNames ? { roleNames: options.roleNames } : {}),
      }),
    clickhouse: () =>
      fingerprintClickHouse(clients.clickhouse, map, {
        rowHash: options.clickhouseRowHash ?? CURRENT_CLICKHOUSE_ROW_HASH,
      }),
    queue: () => fingerprintQueue(clients.nats, map),
    redis: () => fingerprintRedis(clients.redis, map),
  };
  const parts = await Promise.all(FINGERPRINT_STORES.filter((s) => stores.includes(s)).map((s) => work[s]()));
  return { orgId: map.orgId, takenAt, objects: sortObjects(parts.flat()) };
}

/**
 * Compares two fingerprints object by object (store and name), ignoring org ids and times.
 * @returns `equal` and every object that differs in rows or hash, or exists on one side only.
 */
export function compareFingerprints(
  expected: OrganizationFingerprint,
  actual: OrganizationFingerprint,
): FingerprintComparison {
  const key = (o: ObjectFingerprint) => `${o.store}\u0000${o.object}`;
  const actualByKey = new Map(actual.objects.map((o) => [key(o), o]));
  const differences: FingerprintDifference[] = [];
  for (const e of expected.objects) {
    const a = actualByKey.get(key(e));
    actualByKey.delete(key(e));
    if (a === undefined) differences.push({ object: e.object, expected: e });
    else if (a.rows !== e.rows || a.hash !== e.hash) differences.push({ object: e.object, expected: e, actual: a });
  }
  for (const a of actualByKey.values()) differences.push({ object: a.object, actual: a });
  return { equal: differences.length === 0, differences };
}
