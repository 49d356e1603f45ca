import type { Pool } from 'pg';
import type { RemovedCounts } from '../../contracts/deletion';
import type { OrganizationDataMap, SharedTable } from '../../platform/data-map';
import { listOrgSchemas, listRelations } from '../../platform/discovery';
import { inTransaction } from '../../platform/pg-transaction';
import { sharedTableSql, sharedTablesInForeignKeyOrder } from '../../platform/platform-schema';
import { quotePgIdent, quotePgQualified } from '../../platform/quoting';
import { assertNoOutsideDependents } from './boundary';
import { organizationsTable, sharedTableExists } from './organization-row';

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
      const r = await client.query<{ n: string }>(
        `SELECT count(*)::text AS n FROM ${quotePgQualified(t.schema, t.name)}`,
      );
      rows += Number(r.rows[0]?.n ?? 0);
    }
    await assertNoOutsideDependents(client, map, schemas);
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
      if (!(await sharedTableExists(client, table))) continue;
      const result = await client.query(
        `DELETE FROM ${sharedTableSql(table)} WHERE ${quotePgIdent(table.keyColumn)} = $1`,
        [map.orgId],
      );
      const count = result.rowCount ?? 0;
      removed[`${table.schema}.${table.table}`] = count;
      removed.rows = (removed.rows ?? 0) + count;
    }
    return removed;
  });
}

/**
 * Removes the organization's PostgreSQL data from a database: its schemas and its rows of the shared
 * tables (children first, in the declared order, one transaction), the organization row with them.
 * Idempotent. Restore clears its target with it, so a retried attempt starts clean.
 */
export async function clearOrganizationPostgres(
  db: Pool,
  map: OrganizationDataMap,
): Promise<{ schemas: string[]; rows: number }> {
  return inTransaction(db, async (client) => {
    const schemas = await listOrgSchemas(client, map);
    await assertNoOutsideDependents(client, map, schemas);
    for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${quotePgIdent(schema)} CASCADE`);
    let rows = 0;
    for (const table of [...map.postgres.sharedTables].reverse()) {
      if (!(await sharedTableExists(client, table))) continue;
      const r = await client.query(`DELETE FROM ${sharedTableSql(table)} WHERE ${quotePgIdent(table.keyColumn)} = $1`, [
        map.orgId,
      ]);
      rows += r.rowCount ?? 0;
    }
    return { schemas, rows };
  });
}
