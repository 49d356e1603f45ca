// A private, unchanging copy of one table, so that its export and its fingerprint read the same rows
// while the organization keeps writing. ClickHouse has no snapshots; a copy of the parts is the
// nearest thing: MergeTree parts are immutable, and ATTACH PARTITION … FROM hard-links them.
import type { ClickHouseClient } from '@clickhouse/client';
import { z } from 'zod';
import type { PointInTime } from '../../contracts/backup';
import type { ClickHouseObject } from '../../platform/clickhouse-catalog';
import { clickHouseErrorCode } from '../../platform/clickhouse-error-code';
import type { ClickHouseRestoreSettings } from '../../platform/clickhouse-settings';
import { quoteClickHouseQualified, quoteClickHouseString } from '../../platform/quoting';

/** The MergeTree family (replicated too): tables whose parts can be attached to another table. */
const MERGE_TREE = /MergeTree$/;

/**
 * The server refusing the copy for lack of rights: 164 READONLY (a readonly user may not create a
 * table) and 497 ACCESS_DENIED (ClickHouse 20.x and later, a user without CREATE TABLE).
 */
const NO_RIGHT_TO_COPY = ['164', '497'];

/** 57 TABLE_ALREADY_EXISTS, the same code from ClickHouse 18 to 25. */
const TABLE_ALREADY_EXISTS = '57';

const partitionRow = z.object({ partition_id: z.string() });

/**
 * Where one attempt of a backup makes its copies: a database per backup and attempt, so an attempt
 * whose worker was given up but still runs never drops the copies of the attempt that replaced it
 * (the later attempt drops the earlier ones' databases instead). A scratch name: cleanup tools accept it.
 */
export function backupStagingDatabase(backupId: string, attempt: number): string {
  const id = backupId
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase()
    .slice(0, 24);
  return `eloquent_scratch_backup_${id}_${attempt}`;
}

/** A copy made by {@link copyTableForBackup}: read it, then drop it. */
export interface TableCopy {
  database: string;
  table: string;
  how: PointInTime['how'];
  from: string;
  to: string;
}

/** The server does not let this user copy tables (readonly, or no CREATE right): read in place instead. */
export function isCopyRefused(err: unknown): boolean {
  return NO_RIGHT_TO_COPY.includes(clickHouseErrorCode(err) ?? '');
}

/**
 * Copies `source`.`table` into `staging` under the same name: same structure and engine
 * (`CREATE TABLE … AS`), merges stopped so its parts stay as they were; a MergeTree table by
 * attaching every active partition of the source (`ATTACH PARTITION ID … FROM`, ClickHouse 18.1 and
 * later: hard links, no data copied), any other engine (Log family, Memory, Join) by one
 * `INSERT … SELECT` in one thread, which reads one state of it in its order. Rows written to the
 * source meanwhile are either in a partition's copy or not, never half. A copy left by a crashed
 * attempt is replaced.
 * @throws the server's error; {@link isCopyRefused} tells a user without the right to copy.
 */
export async function copyTableForBackup(
  client: ClickHouseClient,
  settings: ClickHouseRestoreSettings,
  source: string,
  staging: string,
  table: ClickHouseObject,
): Promise<TableCopy> {
  const from = new Date().toISOString();
  const target = quoteClickHouseQualified(staging, table.name);
  const original = quoteClickHouseQualified(source, table.name);
  const create = () =>
    client.command({ query: `CREATE TABLE ${target} AS ${original}`, clickhouse_settings: settings.create });
  // Created first, dropped only if there: a round trip per table saved in the usual case.
  await create().catch(async (err: unknown) => {
    if (clickHouseErrorCode(err) !== TABLE_ALREADY_EXISTS) throw err;
    await client.command({ query: `DROP TABLE IF EXISTS ${target}` });
    await create();
  });
  let how: PointInTime['how'];
  if (MERGE_TREE.test(table.engine)) {
    // A merge would collapse the copy's unmerged duplicates, which the source still holds; a user
    // without the SYSTEM right keeps the merges (the fingerprint reads FINAL, so it is still right).
    await client.command({ query: `SYSTEM STOP MERGES ${target}` }).catch(() => undefined);
    const partitions = await client.query({
      query: `SELECT DISTINCT partition_id FROM system.parts
               WHERE database = ${quoteClickHouseString(source)} AND table = ${quoteClickHouseString(table.name)} AND active
               ORDER BY partition_id`,
      format: 'JSONEachRow',
    });
    for (const { partition_id } of z.array(partitionRow).parse(await partitions.json<unknown>())) {
      await client.command({
        query: `ALTER TABLE ${target} ATTACH PARTITION ID ${quoteClickHouseString(partition_id)} FROM ${original}`,
      });
    }
    how = 'attached-parts';
  } else {
    await client.command({
      query: `INSERT INTO ${target} SELECT * FROM ${original}`,
      clickhouse_settings: { ...settings.insert, max_threads: 1 },
    });
    how = 'copied-rows';
  }
  return { database: staging, table: table.name, how, from, to: new Date().toISOString() };
}

/** Drops a copy (idempotent). */
export async function dropTableCopy(client: ClickHouseClient, copy: TableCopy): Promise<void> {
  await client.command({ query: `DROP TABLE IF EXISTS ${quoteClickHouseQualified(copy.database, copy.table)}` });
}
