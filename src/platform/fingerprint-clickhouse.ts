import type { ClickHouseClient } from '@clickhouse/client';
import { z } from 'zod';
import { CURRENT_CLICKHOUSE_ROW_HASH, type ClickHouseRowHash } from '../contracts/backup';
import { clickHouseErrorCode } from './clickhouse-error-code';
import type { OrganizationDataMap } from './data-map';
import { collapsesInMerges, dataObjectName, listClickHouseObjects } from './clickhouse-catalog';
import { formatHash } from './content-hash';
import type { ObjectFingerprint } from './fingerprint';
import { quoteClickHouseIdent, quoteClickHouseQualified, quoteClickHouseString } from './quoting';

/** ClickHouse returns 64-bit integers as JSON strings by default; accept either. */
const resultRow = z.object({ rows: z.union([z.string(), z.number()]), hash: z.union([z.string(), z.number()]) });
const columnRow = z.object({ table: z.string(), name: z.string(), type: z.string() });

/** ILLEGAL_TYPE_OF_ARGUMENT: cityHash64 refuses a column type (ClickHouse 18: Decimal, UUID, Array(Nullable)). */
const ILLEGAL_TYPE_OF_ARGUMENT = '43';

/**
 * A column as a fingerprint reads it: an aggregate function state by its finalized value, because
 * a state's bytes depend on the order in which parts were merged (a uniq's hash table, a
 * groupArray's order), so a copy whose parts lie differently holds the same states in other bytes.
 */
function readAsValue(column: { name: string; type: string }): string {
  const quoted = quoteClickHouseIdent(column.name);
  return column.type.startsWith('AggregateFunction(') ? `finalizeAggregation(${quoted})` : quoted;
}

/** How one manifest's row hash reads rows: as text or by column values; as stored or as final. */
interface RowHashForm {
  text: boolean;
  /** `final-column-hash`: merging tables read with FINAL, aggregate states by their finalized values. */
  finalValues: boolean;
}

function formOf(rowHash: ClickHouseRowHash): RowHashForm {
  return { text: rowHash === 'text-tuple', finalValues: rowHash === 'final-column-hash' };
}

/**
 * The hash of one row, as SQL:
 * - text (`text-tuple`): `cityHash64(toString(tuple(*)))`, the row rendered as text; rendering dominates the cost.
 * - by column (`column-hash`, `final-column-hash`): `cityHash64` over the columns' own values, about
 *   3-5x cheaper. A Nullable column hashes as (isNull, value or the type's default), because
 *   cityHash64 of a NULL argument is NULL and the row would drop out of the sum. A table with a
 *   Nullable type nested in another, or with a column type cityHash64 refuses, falls back to text,
 *   decided by the column types alone, so a restored copy falls back the same way.
 * With final values an aggregate function state is hashed by its finalized value ({@link readAsValue}).
 */
function rowHashSql(form: RowHashForm, columns: Array<{ name: string; type: string }>): string {
  // A NULL inside an array or tuple has no ifNull to pin its stored bytes: such tables hash their text.
  const nestedNullable = columns.some((c) => c.type.lastIndexOf('Nullable(') > 0);
  const aggregates = form.finalValues && columns.some((c) => c.type.startsWith('AggregateFunction('));
  if (form.text || columns.length === 0 || nestedNullable) {
    // tuple(*) unless a state must be finalized: the text of every other table stays as it was hashed before.
    return `cityHash64(toString(tuple(${aggregates ? columns.map(readAsValue).join(', ') : '*'})))`;
  }
  const parts = columns.map((c) => {
    const column = quoteClickHouseIdent(c.name);
    // assumeNotNull alone may return any stored bytes under a NULL: replace NULL with the type's default.
    if (c.type.startsWith('Nullable('))
      return `isNull(${column}), ifNull(${column}, defaultValueOfArgumentType(assumeNotNull(${column})))`;
    return form.finalValues ? readAsValue(c) : column;
  });
  return `cityHash64(${parts.join(', ')})`;
}

/**
 * Fingerprints every table of the organization's ClickHouse database whose engine owns its rows
 * (never a Buffer, Distributed, Merge or view, which read elsewhere): row count and the sum
 * (UInt64, wrapping modulo 2^64) of a hash of every row, computed by the server. Works on ClickHouse 18.
 * @param options.database fingerprint this database instead (a scratch copy); object names stay `clickhouse:<table>`,
 *   and a materialized view's implicit inner table is `clickhouse:<view>` (its own name changes with the view's UUID).
 * @param options.rowHash how rows are hashed; a manifest names the one its fingerprint used.
 */
export async function fingerprintClickHouse(
  client: ClickHouseClient,
  map: OrganizationDataMap,
  options: { database?: string; rowHash?: ClickHouseRowHash } = {},
): Promise<ObjectFingerprint[]> {
  const database = options.database ?? map.clickhouse.database;
  const rowHash = options.rowHash ?? CURRENT_CLICKHOUSE_ROW_HASH;
  const tables = (await listClickHouseObjects(client, database)).filter((t) => t.engineClass === 'data');
  const columnsOf = new Map<string, Array<{ name: string; type: string }>>();
  if (tables.length > 0) {
    // system.columns lists each table's columns in their order (text-tuple needs them for aggregate states).
    const result = await client.query({
      query: `SELECT table, name, type FROM system.columns WHERE database = ${quoteClickHouseString(database)}`,
      format: 'JSONEachRow',
    });
    for (const column of z.array(columnRow).parse(await result.json<unknown>())) {
      columnsOf.set(column.table, [...(columnsOf.get(column.table) ?? []), column]);
    }
  }
  return Promise.all(
    tables.map((table) =>
      hashTable(
        client,
        database,
        table,
        columnsOf.get(table.name) ?? [],
        `clickhouse:${dataObjectName(table)}`,
        rowHash,
      ),
    ),
  );
}

/**
 * Fingerprints one table, `database`.`table.name`, as the object `object`: what a backup does per
 * table, on the copy it exports, so the data and its fingerprint are the same rows however busy
 * the source is (activities/clickhouse/table-copy.ts).
 */
export async function fingerprintClickHouseTable(
  client: ClickHouseClient,
  database: string,
  table: { name: string; engine: string },
  object: string,
  rowHash: ClickHouseRowHash = CURRENT_CLICKHOUSE_ROW_HASH,
): Promise<ObjectFingerprint> {
  const result = await client.query({
    query: `SELECT table, name, type FROM system.columns
             WHERE database = ${quoteClickHouseString(database)} AND table = ${quoteClickHouseString(table.name)}`,
    format: 'JSONEachRow',
  });
  return hashTable(client, database, table, z.array(columnRow).parse(await result.json<unknown>()), object, rowHash);
}

/** Row count and hash sum of one table; falls back to text where cityHash64 refuses a column type. */
async function hashTable(
  client: ClickHouseClient,
  database: string,
  table: { name: string; engine: string },
  columns: Array<{ name: string; type: string }>,
  object: string,
  rowHash: ClickHouseRowHash,
): Promise<ObjectFingerprint> {
  const run = async (form: RowHashForm): Promise<ObjectFingerprint> => {
    const final = form.finalValues && collapsesInMerges(table.engine) ? ' FINAL' : '';
    const result = await client.query({
      query: `SELECT count() AS rows, toString(sum(${rowHashSql(form, columns)})) AS hash
                FROM ${quoteClickHouseQualified(database, table.name)}${final}`,
      format: 'JSONEachRow',
    });
    const row = z.array(resultRow).parse(await result.json<unknown>())[0];
    return { store: 'clickhouse', object, rows: Number(row?.rows ?? 0), hash: formatHash(String(row?.hash ?? '0')) };
  };
  return run(formOf(rowHash)).catch((err: unknown) => {
    if (rowHash === 'text-tuple' || clickHouseErrorCode(err) !== ILLEGAL_TYPE_OF_ARGUMENT) throw err;
    return run({ ...formOf(rowHash), text: true });
  });
}
