import type { ClickHouseClient } from '@clickhouse/client';
import { z } from 'zod';
import { quoteClickHouseQualified, quoteClickHouseString } from './quoting';

/**
 * What a backup does with a table of an engine:
 * - `data`: the engine owns its rows; they are exported, restored and fingerprinted;
 * - `view`: a view or materialized view, created after the data it reads (an MV's implicit inner
 *   table is listed separately, as `data` belonging to its view);
 * - `ddl-only`: the engine keeps no rows of its own (it forwards, reads elsewhere or streams); only
 *   its CREATE statement is kept, and it is never read or written by backup, verification or restore;
 * - `unknown`: an engine this project has not classified; a backup refuses it by name rather than
 *   guess whether it holds rows.
 */
export type ClickHouseEngineClass = 'data' | 'view' | 'ddl-only' | 'unknown';

/** The engines that own their rows: the MergeTree family (replicated too), the Log family, Memory, Set, Join. */
const DATA_ENGINES =
  /^(?:(?:Replicated)?(?:Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing|Graphite)?MergeTree|TinyLog|StripeLog|Log|Memory|Set|Join|EmbeddedRocksDB)$/;
const VIEW_ENGINES = new Set(['View', 'MaterializedView', 'LiveView']);
/** Engines that forward to, read from or stream from elsewhere; reading them could touch the source or an outside system. */
const DDL_ONLY_ENGINES = new Set([
  'Buffer',
  'Distributed',
  'Merge',
  'Null',
  'Dictionary',
  'URL',
  'MySQL',
  'PostgreSQL',
  'MongoDB',
  'SQLite',
  'Redis',
  'JDBC',
  'ODBC',
  'S3',
  'S3Queue',
  'AzureBlobStorage',
  'AzureQueue',
  'HDFS',
  'Hive',
  'Kafka',
  'RabbitMQ',
  'NATS',
  'FileLog',
  'GenerateRandom',
  'ExternalDistributed',
  'MaterializedPostgreSQL',
  'Iceberg',
  'IcebergS3',
  'DeltaLake',
  'Hudi',
  'Executable',
  'ExecutablePool',
  'Loop',
]);

/**
 * DDL-only engines that consume from an outside system as soon as something reads them: a Kafka
 * table joins its consumer group (with a materialized view on it, messages move into the copy and
 * never reach the source), S3Queue and AzureQueue claim files, FileLog moves its offsets,
 * MaterializedPostgreSQL takes a replication slot. A copy that is not the organization itself
 * (verification's scratch database, a clone, a staged restore) gets them detached: same columns,
 * `ENGINE = Null`, so views on them still create and nothing is ever consumed.
 */
const STREAMING_ENGINES = new Set([
  'Kafka',
  'RabbitMQ',
  'NATS',
  'S3Queue',
  'AzureQueue',
  'FileLog',
  'MaterializedPostgreSQL',
]);

/** Whether a table of this engine consumes from an outside system; see {@link STREAMING_ENGINES}. */
export function consumesFromOutside(engine: string | undefined): boolean {
  return engine !== undefined && STREAMING_ENGINES.has(engine);
}

/** The class of a ClickHouse table engine; see {@link ClickHouseEngineClass}. */
export function classifyClickHouseEngine(engine: string): ClickHouseEngineClass {
  if (DATA_ENGINES.test(engine)) return 'data';
  if (VIEW_ENGINES.has(engine)) return 'view';
  if (DDL_ONLY_ENGINES.has(engine)) return 'ddl-only';
  return 'unknown';
}

/**
 * Why a backup cannot hold an object, or undefined when it can: an engine of unknown kind, or a
 * `Set`, whose rows no query can read (ClickHouse 18 and modern servers answer "Method read is not supported").
 */
export function backupRefusal(object: ClickHouseObject): string | undefined {
  if (object.engineClass === 'unknown') return `engine ${object.engine} is not known to own its rows or to own none`;
  if (object.engine === 'Set') return 'a Set table owns rows that no query can read back';
  return undefined;
}

/** Engines whose stored rows collapse in background merges; read with FINAL so a merge never changes a fingerprint. */
export function collapsesInMerges(engine: string): boolean {
  return /^(Replicated)?(Replacing|Collapsing|VersionedCollapsing|Summing|Aggregating)MergeTree$/.test(engine);
}

/** A table, view or dictionary of a ClickHouse database. */
export interface ClickHouseObject {
  /** The name in `system.tables`. */
  name: string;
  engine: string;
  engineClass: ClickHouseEngineClass;
  /** For a materialized view's implicit inner table (`.inner.<view>`, `.inner_id.<view uuid>`): its view. */
  innerTableOf?: string;
}

/**
 * The name a backup gives an object's rows: an implicit inner table's rows are its view's, because
 * the inner table's own name depends on the view's UUID, which a copy does not keep.
 */
export function dataObjectName(object: ClickHouseObject): string {
  return object.innerTableOf ?? object.name;
}

const tableRow = z.object({ name: z.string(), engine: z.string(), uuid: z.string() });
const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/**
 * Every table, view and dictionary of a ClickHouse database, sorted by name, with each implicit
 * inner table tied to its materialized view: `.inner.<view>` on Ordinary databases (ClickHouse 18),
 * `.inner_id.<uuid of the view>` on Atomic ones (modern servers, where `system.tables` has `uuid`).
 * An inner table whose view is missing is listed as a table of its own. Empty when the database is missing.
 */
export async function listClickHouseObjects(client: ClickHouseClient, database: string): Promise<ClickHouseObject[]> {
  const hasUuid = await client.query({
    query: "SELECT name FROM system.columns WHERE database = 'system' AND table = 'tables' AND name = 'uuid'",
    format: 'JSONEachRow',
  });
  const uuid = (await hasUuid.json<unknown>()).length > 0 ? 'toString(uuid)' : `'${NIL_UUID}'`;
  const result = await client.query({
    query: `SELECT name, engine, ${uuid} AS uuid FROM system.tables WHERE database = ${quoteClickHouseString(database)} ORDER BY name`,
    format: 'JSONEachRow',
  });
  return tieInnerTables(z.array(tableRow).parse(await result.json<unknown>()));
}

/**
 * Classifies `system.tables` rows and ties each implicit inner table to its materialized view:
 * `.inner.<view>` by name, `.inner_id.<uuid>` by the view's UUID (nil on ClickHouse 18, which has no `uuid`).
 */
export function tieInnerTables(
  rows: ReadonlyArray<{ name: string; engine: string; uuid: string }>,
): ClickHouseObject[] {
  const views = rows.filter((r) => r.engine === 'MaterializedView');
  const viewByUuid = new Map(views.filter((v) => v.uuid !== NIL_UUID).map((v) => [v.uuid, v.name]));
  const viewNames = new Set(views.map((v) => v.name));
  return rows.map((row) => {
    const object: ClickHouseObject = {
      name: row.name,
      engine: row.engine,
      engineClass: classifyClickHouseEngine(row.engine),
    };
    const byName = row.name.startsWith('.inner.') ? row.name.slice('.inner.'.length) : undefined;
    const byUuid = row.name.startsWith('.inner_id.') ? viewByUuid.get(row.name.slice('.inner_id.'.length)) : undefined;
    const view = byUuid ?? (byName !== undefined && viewNames.has(byName) ? byName : undefined);
    return view === undefined ? object : { ...object, innerTableOf: view };
  });
}

const statementRow = z.object({ statement: z.string() });

const secretsSettingsOf = new WeakMap<ClickHouseClient, Promise<{ format_display_secrets_in_show_and_select?: 1 }>>();

/**
 * `format_display_secrets_in_show_and_select = 1` where the server has it (23.3 and later) and the
 * user may set settings (not readonly=1): a CREATE statement then carries its credentials instead of
 * `'[HIDDEN]'`, which clickhouse-ddl.ts' checkNoHiddenSecrets refuses. Asked once per client.
 */
function showSecrets(client: ClickHouseClient): Promise<{ format_display_secrets_in_show_and_select?: 1 }> {
  let settings = secretsSettingsOf.get(client);
  if (!settings) {
    settings = client
      .query({
        query:
          "SELECT name, value FROM system.settings WHERE name IN ('format_display_secrets_in_show_and_select', 'readonly')",
        format: 'JSONEachRow',
      })
      .then(async (result) => {
        const rows = z.array(z.object({ name: z.string(), value: z.string() })).parse(await result.json<unknown>());
        const readonly = rows.find((r) => r.name === 'readonly')?.value === '1';
        const available = rows.some((r) => r.name === 'format_display_secrets_in_show_and_select');
        return available && !readonly ? { format_display_secrets_in_show_and_select: 1 as const } : {};
      });
    // A failed probe is asked again next time rather than remembered.
    settings.catch(() => secretsSettingsOf.delete(client));
    secretsSettingsOf.set(client, settings);
  }
  return settings;
}

/**
 * The CREATE statement of an object: `SHOW CREATE TABLE`, or for a dictionary `system.tables`'
 * `create_table_query` (modern servers answer `SHOW CREATE TABLE` of a dictionary with an error).
 * @throws Error when the server returns no statement.
 */
export async function readCreateStatement(
  client: ClickHouseClient,
  database: string,
  object: ClickHouseObject,
): Promise<string> {
  const query =
    object.engine === 'Dictionary'
      ? `SELECT create_table_query AS statement FROM system.tables WHERE database = ${quoteClickHouseString(database)} AND name = ${quoteClickHouseString(object.name)}`
      : `SHOW CREATE TABLE ${quoteClickHouseQualified(database, object.name)}`;
  const result = await client.query({ query, format: 'JSONEachRow', clickhouse_settings: await showSecrets(client) });
  const statement = z.array(statementRow).parse(await result.json<unknown>())[0]?.statement;
  if (!statement) throw new Error(`ClickHouse returned no CREATE statement for ${database}.${object.name}`);
  return statement;
}
