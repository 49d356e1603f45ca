import type { ClickHouseClient } from '@clickhouse/client';
import type { Redis } from 'ioredis';
import type { Pool, PoolClient } from 'pg';
import type { OrganizationDataMap } from './data-map';
import { quoteClickHouseString } from './quoting';

/**
 * The organization's PostgreSQL schemas that exist, sorted. Compared exactly (no LIKE: `_` is a
 * LIKE wildcard, so `org_ab%` would also catch `org_abc`), then checked by the data map.
 */
export async function listOrgSchemas(db: Pool | PoolClient, map: OrganizationDataMap): Promise<string[]> {
  const main = map.postgres.mainSchema;
  const result = await db.query<{ nspname: string }>(
    `SELECT nspname FROM pg_namespace WHERE nspname = $1 OR left(nspname, length($2)) = $2 ORDER BY nspname`,
    [main, map.postgres.suffixSchemaPrefix],
  );
  return result.rows.map((r) => r.nspname).filter((name) => map.postgres.isOrgSchema(name));
}

/** A table or sequence in one of the organization's schemas. */
export interface PgRelation {
  schema: string;
  name: string;
  kind: 'table' | 'sequence';
}

/** Tables (plain and partitioned parents) and sequences in the given schemas, sorted by schema and name. */
export async function listRelations(db: Pool | PoolClient, schemas: readonly string[]): Promise<PgRelation[]> {
  if (schemas.length === 0) return [];
  const result = await db.query<{ schema: string; name: string; relkind: string }>(
    `SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'S') AND NOT c.relispartition
      ORDER BY 1, 2`,
    [schemas],
  );
  return result.rows.map((r) => ({ schema: r.schema, name: r.name, kind: r.relkind === 'S' ? 'sequence' : 'table' }));
}

/** True when the ClickHouse database exists (ClickHouse 18 has no `EXISTS DATABASE`). */
export async function clickHouseDatabaseExists(client: ClickHouseClient, database: string): Promise<boolean> {
  const result = await client.query({
    query: `SELECT name FROM system.databases WHERE name = ${quoteClickHouseString(database)}`,
    format: 'JSONEachRow',
  });
  return (await result.json<unknown>()).length > 0;
}

/** True when the pattern is a glob (SCAN is needed) rather than one exact key. */
function isGlob(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/**
 * Every key matching `pattern`, found with SCAN (never KEYS, which blocks the server). An exact key
 * is checked with EXISTS instead of scanning the whole keyspace.
 */
export async function scanRedisKeys(redis: Redis, pattern: string, batch = 1000): Promise<string[]> {
  if (!isGlob(pattern)) return (await redis.exists(pattern)) === 1 ? [pattern] : [];
  const keys = new Set<string>();
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', batch);
    for (const key of found) keys.add(key);
    cursor = next;
  } while (cursor !== '0');
  return [...keys].sort();
}
