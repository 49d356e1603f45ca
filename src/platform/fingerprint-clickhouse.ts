import type { ClickHouseClient } from '@clickhouse/client';
import { z } from 'zod';
import type { OrganizationDataMap } from './data-map';
import { holdsData, listClickHouseTables } from './discovery';
import { formatHash } from './content-hash';
import type { ObjectFingerprint } from './fingerprint';
import { quoteClickHouseQualified } from './quoting';

/** ClickHouse returns 64-bit integers as JSON strings by default; accept either. */
const resultRow = z.object({ rows: z.union([z.string(), z.number()]), hash: z.union([z.string(), z.number()]) });

/**
 * Engines whose stored rows collapse in background merges: read with FINAL, so the fingerprint
 * describes the logical content and does not change when a merge happens to run.
 */
function collapses(engine: string): boolean {
  return /^(Replicated)?(Replacing|Collapsing|VersionedCollapsing|Summing|Aggregating)MergeTree$/.test(engine);
}

/**
 * Fingerprints every table of the organization's ClickHouse database: row count and the sum
 * (UInt64, wrapping modulo 2^64) of `cityHash64(toString(tuple(*)))` over rows, computed by the
 * server. Works on ClickHouse 18.
 * @param databaseOverride fingerprint this database instead (a scratch copy); object names stay `clickhouse:<table>`.
 */
export async function fingerprintClickHouse(client: ClickHouseClient, map: OrganizationDataMap, databaseOverride?: string): Promise<ObjectFingerprint[]> {
  const database = databaseOverride ?? map.clickhouse.database;
  const tables = (await listClickHouseTables(client, database)).filter((t) => holdsData(t.engine));
  return Promise.all(
    tables.map(async (table): Promise<ObjectFingerprint> => {
      const result = await client.query({
        query: `SELECT count() AS rows, toString(sum(cityHash64(toString(tuple(*))))) AS hash
                  FROM ${quoteClickHouseQualified(database, table.name)}${collapses(table.engine) ? ' FINAL' : ''}`,
        format: 'JSONEachRow',
      });
      const row = z.array(resultRow).parse(await result.json<unknown>())[0];
      return { store: 'clickhouse', object: `clickhouse:${table.name}`, rows: Number(row?.rows ?? 0), hash: formatHash(String(row?.hash ?? '0')) };
    }),
  );
}
