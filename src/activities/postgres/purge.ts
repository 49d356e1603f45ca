import { inTransaction } from '../../platform/pg-transaction';
import type { Pool, PoolClient } from 'pg';
import type { RemovedCounts } from '../../contracts/deletion';
import { FailureType, permanentFailure } from '../../errors';
import type { OrganizationDataMap, SharedTable } from '../../platform/data-map';
import { listOrgSchemas, listRelations } from '../../platform/discovery';
import { sharedTableSql, sharedTablesInForeignKeyOrder } from '../../platform/platform-schema';
import { quotePgIdent, quotePgQualified } from '../../platform/quoting';

/** Statuses the platform's organizations table allows (see platform-schema.ts). */
export type OrganizationStatus = 'active' | 'deleting' | 'deleted';
const STATUSES: readonly string[] = ['active', 'deleting', 'deleted'];

/** The organizations table: the first shared table, whose key column is the organization id. */
function organizationsTable(map: OrganizationDataMap): SharedTable {
  const table = map.postgres.sharedTables[0];
  if (!table) throw permanentFailure(FailureType.InvalidInput, 'the platform model declares no shared tables', { store: 'postgres', orgId: map.orgId });
  return table;
}

async function tableExists(db: Pool | PoolClient, table: SharedTable): Promise<boolean> {
  const result = await db.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [quotePgQualified(table.schema, table.table)]);
  return result.rows[0]?.present === true;
}

/** The organization row's `status`, or `undefined` when there is no row. */
export async function readOrganizationStatus(pool: Pool, map: OrganizationDataMap): Promise<string | undefined> {
  const table = organizationsTable(map);
  if (!(await tableExists(pool, table))) return undefined;
  const result = await pool.query<{ status: string }>(`SELECT status FROM ${sharedTableSql(table)} WHERE ${quotePgIdent(table.keyColumn)} = $1`, [map.orgId]);
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
  if (!STATUSES.includes(to)) throw permanentFailure(FailureType.InvalidInput, `status: expected one of ${STATUSES.join(', ')}, got ${JSON.stringify(to)}`, { store: 'postgres', orgId: map.orgId });
  const table = organizationsTable(map);
  const key = quotePgIdent(table.keyColumn);
  const updated = await pool.query(`UPDATE ${sharedTableSql(table)} SET status = $2 WHERE ${key} = $1 AND status = ANY($3::text[])`, [map.orgId, to, [...from]]);
  return { changed: (updated.rowCount ?? 0) > 0, status: await readOrganizationStatus(pool, map) };
}

/**
 * Drops every schema of the organization (`DROP SCHEMA … CASCADE`), declared or found by the data
 * map's exact rule, in one transaction. Rows are counted first, in the same transaction, for the
 * certificate. Idempotent: schemas already gone count 0.
 */
export async function purgeOrganizationSchemas(pool: Pool, map: OrganizationDataMap): Promise<RemovedCounts> {
  return inTransaction(pool, async (client) => {
    const schemas = await listOrgSchemas(client, map);
    const tables = (await listRelations(client, schemas)).filter((r) => r.kind === 'table');
    let rows = 0;
    for (const t of tables) {
      const r = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${quotePgQualified(t.schema, t.name)}`);
      rows += Number(r.rows[0]?.n ?? 0);
    }
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${quotePgIdent(schema)} CASCADE`);
    return { schemas: schemas.length, tables: tables.length, rows };
  });
}

/**
 * Deletes the organization's rows from every shared table in one transaction, children before
 * parents (the foreign keys read from the catalog decide, the declared order breaks ties), and the
 * organization row itself last. Decision: the row is deleted, never left behind as `deleted`. Until
 * this transaction commits it reads `deleting` (users cannot log in, the id is not free); after it,
 * nothing of the organization is left in PostgreSQL. One transaction: a crash leaves all or none.
 * @returns rows deleted per table (`public.users`, …) and `rows` in total.
 */
export async function purgeOrganizationSharedRows(pool: Pool, map: OrganizationDataMap): Promise<RemovedCounts> {
  const orgTable = organizationsTable(map);
  const ordered = (await sharedTablesInForeignKeyOrder(pool, map.postgres.sharedTables)).reverse();
  const isOrgTable = (t: SharedTable) => t.schema === orgTable.schema && t.table === orgTable.table;
  const order = [...ordered.filter((t) => !isOrgTable(t)), orgTable];
  return inTransaction(pool, async (client) => {
    const removed: RemovedCounts = { rows: 0 };
    for (const table of order) {
      if (!(await tableExists(client, table))) continue;
      const result = await client.query(`DELETE FROM ${sharedTableSql(table)} WHERE ${quotePgIdent(table.keyColumn)} = $1`, [map.orgId]);
      const count = result.rowCount ?? 0;
      removed[`${table.schema}.${table.table}`] = count;
      removed.rows = (removed.rows ?? 0) + count;
    }
    return removed;
  });
}
