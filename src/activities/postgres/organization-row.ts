import type { Pool, PoolClient } from 'pg';
import { FailureType, messageOf, permanentFailure } from '../../errors';
import type { OrganizationDataMap, SharedTable } from '../../platform/data-map';
import { sharedTableSql } from '../../platform/platform-schema';
import { quotePgIdent, quotePgQualified } from '../../platform/quoting';

/** Statuses the platform's organizations table allows (see platform-schema.ts). */
export type OrganizationStatus = 'active' | 'deleting' | 'deleted';
const STATUSES: readonly string[] = ['active', 'deleting', 'deleted'];

/** The organizations table: the first shared table, whose key column is the organization id. */
export function organizationsTable(map: OrganizationDataMap): SharedTable {
  const table = map.postgres.sharedTables[0];
  if (!table)
    throw permanentFailure(FailureType.InvalidInput, 'the platform model declares no shared tables', {
      store: 'postgres',
      orgId: map.orgId,
    });
  return table;
}

/** Whether a shared table exists (a fresh database may not have the platform's tables yet). */
export async function sharedTableExists(db: Pool | PoolClient, table: SharedTable): Promise<boolean> {
  const result = await db.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [
    quotePgQualified(table.schema, table.table),
  ]);
  return result.rows[0]?.present === true;
}

/** The organization row's `status`, or `undefined` when there is no row. */
export async function readOrganizationStatus(pool: Pool, map: OrganizationDataMap): Promise<string | undefined> {
  const table = organizationsTable(map);
  if (!(await sharedTableExists(pool, table))) return undefined;
  const result = await pool.query<{ status: string }>(
    `SELECT status FROM ${sharedTableSql(table)} WHERE ${quotePgIdent(table.keyColumn)} = $1`,
    [map.orgId],
  );
  return result.rows[0]?.status;
}

/**
 * Sets the organization row's status to `to` when it is one of `from` (compare-and-set, so a retry
 * or a late compensation never overwrites a status someone else set).
 * @returns whether the row changed, and the status it has now (`undefined`: no row).
 */
export async function setOrganizationStatus(
  pool: Pool,
  map: OrganizationDataMap,
  to: string,
  from: readonly string[],
): Promise<{ changed: boolean; status: string | undefined }> {
  if (!STATUSES.includes(to))
    throw permanentFailure(
      FailureType.InvalidInput,
      `status: expected one of ${STATUSES.join(', ')}, got ${JSON.stringify(to)}`,
      { store: 'postgres', orgId: map.orgId },
    );
  const table = organizationsTable(map);
  const key = quotePgIdent(table.keyColumn);
  const updated = await pool.query(
    `UPDATE ${sharedTableSql(table)} SET status = $2 WHERE ${key} = $1 AND status = ANY($3::text[])`,
    [map.orgId, to, [...from]],
  );
  return { changed: (updated.rowCount ?? 0) > 0, status: await readOrganizationStatus(pool, map) };
}

/** Non-retryable `UnknownOrganization` when the organization row does not exist. */
export async function assertOrganizationExists(db: Pool | PoolClient, map: OrganizationDataMap): Promise<void> {
  const orgTable = map.postgres.sharedTables[0];
  if (!orgTable) return;
  const found = await db
    .query(`SELECT 1 FROM ${sharedTableSql(orgTable)} WHERE ${quotePgIdent(orgTable.keyColumn)} = $1`, [map.orgId])
    .catch((err: unknown) => {
      if (/does not exist/.test(messageOf(err))) return { rowCount: 0 };
      throw err;
    });
  if (!found.rowCount) {
    throw permanentFailure(
      FailureType.UnknownOrganization,
      `organization ${JSON.stringify(map.orgId)} does not exist (no row in ${orgTable.schema}.${orgTable.table})`,
      {
        store: 'postgres',
        orgId: map.orgId,
        object: `${orgTable.schema}.${orgTable.table}`,
      },
    );
  }
}
