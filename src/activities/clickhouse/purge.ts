import type { ClickHouseClient } from '@clickhouse/client';
import { z } from 'zod';
import type { RemovedCounts } from '../../contracts/deletion';
import type { OrganizationDataMap } from '../../platform/data-map';
import { clickHouseDatabaseExists } from '../../platform/discovery';
import { quoteClickHouseString } from '../../platform/quoting';
import { dropClickHouseDatabase } from './restore';

const countsRow = z.object({ tables: z.union([z.string(), z.number()]), rows: z.union([z.string(), z.number()]) });

/**
 * Drops the organization's ClickHouse database (`DROP DATABASE IF EXISTS`, with `SYNC` on Atomic
 * databases; there is no `EXISTS DATABASE` on ClickHouse 18, so presence is read from `system.databases`). The
 * database name comes from the data map and is quoted as an identifier. Idempotent.
 * @returns `tables` and `rows` (active parts) the database held, 0 when it was gone already.
 */
export async function purgeOrganizationClickHouse(
  clickhouse: ClickHouseClient,
  map: OrganizationDataMap,
): Promise<RemovedCounts> {
  const database = map.clickhouse.database;
  if (!(await clickHouseDatabaseExists(clickhouse, database))) return { tables: 0, rows: 0 };
  const result = await clickhouse.query({
    query: `SELECT (SELECT count() FROM system.tables WHERE database = ${quoteClickHouseString(database)}) AS tables,
                   (SELECT sum(rows) FROM system.parts WHERE active AND database = ${quoteClickHouseString(database)}) AS rows`,
    format: 'JSONEachRow',
  });
  const counts = z.array(countsRow).parse(await result.json<unknown>())[0];
  await dropClickHouseDatabase(clickhouse, database);
  return { tables: Number(counts?.tables ?? 0), rows: Number(counts?.rows ?? 0) };
}
