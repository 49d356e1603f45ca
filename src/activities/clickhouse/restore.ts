import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import { Context } from '@temporalio/activity';
import { z } from 'zod';
import { FailureType, messageOf, permanentFailure } from '../../errors';
import { consumesFromOutside, listClickHouseObjects } from '../../platform/clickhouse-catalog';
import {
  assertRestorableStatement,
  ddlFailure,
  detachStreamingTable,
  retargetCreateStatement,
} from '../../platform/clickhouse-ddl';
import { planClickHouseRestore } from '../../platform/clickhouse-restore-plan';
import { readClickHouseRestoreSettings } from '../../platform/clickhouse-settings';
import { organizationDataMap, type PlatformModel } from '../../platform/data-map';
import { quoteClickHouseIdent, quoteClickHouseQualified, quoteClickHouseString } from '../../platform/quoting';
import { clickHouseErrorCode } from '../../platform/clickhouse-error-code';
import type { ArtifactRef, BackupRef, BackupStore } from '../../storage/backup-store';
import { startHeartbeats } from '../support/heartbeats';
import { readManifest } from '../storage/manifest';
import { classifyClickHouseError, isRetryableClickHouseError } from './errors';

export interface ClickHouseRestoreDeps {
  clickhouse: ClickHouseClient;
  store: BackupStore;
  model: PlatformModel;
}

export interface RestoreClickHouseInput {
  orgId: string;
  backupId: string;
  targetOrgId: string;
  /** Restore into this scratch database instead of the target organization's. */
  scratchDatabase?: string;
}

export interface RestoreClickHouseResult {
  database: string;
  tables: number;
  rows: number;
  /**
   * Streaming tables (Kafka, RabbitMQ, S3Queue, …) created detached, as `ENGINE = Null`, because the
   * copy is not the organization itself: a scratch database or a clone must never consume the
   * source's messages. Absent in results of earlier versions.
   */
  detachedStreams?: string[];
}

/**
 * The most bytes one CREATE statement of a backup may have (1 MiB). `SHOW CREATE` of the widest
 * table we know is a few hundred KiB; a DDL artifact is held in memory, so a bigger one is refused
 * before it is read whole instead of exhausting the worker.
 */
export const MAX_DDL_ARTIFACT_BYTES = 1024 * 1024;

/**
 * Reads every DDL artifact of a backup (each at most {@link MAX_DDL_ARTIFACT_BYTES}) and checks each
 * statement is one CREATE in `sourceDatabase` only (clickhouse-ddl.ts `assertRestorableStatement`),
 * before anything is executed. @returns object name → statement.
 * @throws non-retryable `StoreRejected` naming the artifact and the reason.
 */
export async function readRestorableDdl(
  store: BackupStore,
  backup: { orgId: string; backupId: string },
  artifacts: ReadonlyArray<{ object: string; file: string; rawBytes?: number }>,
  sourceDatabase: string,
): Promise<Map<string, string>> {
  const statements = new Map<string, string>();
  for (const artifact of artifacts) {
    const object = artifact.object;
    const refuse = (why: string) =>
      permanentFailure(FailureType.StoreRejected, `DDL artifact ${artifact.file} of ${object} is refused: ${why}`, {
        store: 'clickhouse',
        orgId: backup.orgId,
        object: `${backup.orgId}/${backup.backupId}/${artifact.file}`,
      });
    if (artifact.rawBytes !== undefined && artifact.rawBytes > MAX_DDL_ARTIFACT_BYTES)
      throw refuse(
        `the manifest records ${artifact.rawBytes} bytes, more than the ${MAX_DDL_ARTIFACT_BYTES} a statement may have`,
      );
    const chunks: Buffer[] = [];
    let bytes = 0;
    const reader = await store.openArtifactReader({ ...backup, path: artifact.file });
    for await (const chunk of reader) {
      bytes += (chunk as Buffer).length;
      if (bytes > MAX_DDL_ARTIFACT_BYTES) {
        reader.destroy();
        throw refuse(`it holds more than ${MAX_DDL_ARTIFACT_BYTES} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    const statement = Buffer.concat(chunks).toString('utf8').trim();
    try {
      assertRestorableStatement(statement, sourceDatabase);
    } catch (err) {
      throw refuse(err instanceof Error ? err.message : String(err));
    }
    statements.set(object, statement);
  }
  return statements;
}

/** Scratch ClickHouse databases this project creates; only these names are ever dropped as scratch. */
export const CLICKHOUSE_SCRATCH_PREFIX = 'eloquent_scratch_';

/**
 * The statement that drops `database` of engine `engine` (from `system.databases`). An Atomic or
 * Replicated database (ClickHouse 20.5 and later) drops its tables in the background, minutes later
 * by default: `SYNC` waits, so a Replicated table's ZooKeeper path is free before a restore creates
 * the database again. ClickHouse 18's Ordinary databases drop at once and do not know `SYNC`.
 */
export function dropDatabaseStatement(database: string, engine: string | undefined): string {
  const sync = engine === 'Atomic' || engine === 'Replicated' ? ' SYNC' : '';
  return `DROP DATABASE IF EXISTS ${quoteClickHouseIdent(database)}${sync}`;
}

const engineRow = z.object({ engine: z.string() });

/** Drops a database and waits until its tables are gone; dropping one that is gone succeeds. */
export async function dropClickHouseDatabase(client: ClickHouseClient, database: string): Promise<void> {
  const result = await client.query({
    query: `SELECT engine FROM system.databases WHERE name = ${quoteClickHouseString(database)}`,
    format: 'JSONEachRow',
  });
  const engine = z.array(engineRow).parse(await result.json<unknown>())[0]?.engine;
  if (engine === undefined) return;
  await client.command({ query: dropDatabaseStatement(database, engine) });
}

/**
 * Restores the ClickHouse part of a backup: the target database is (re)created empty — the workflow
 * has decided it may be — then, in the order of clickhouse-restore-plan.ts, tables that own rows,
 * their rows streamed in `Native` format, DDL-only tables and dictionaries, then views and
 * materialized views (an MV's inner-table rows right after it). Statements are retargeted token by
 * token (clickhouse-ddl.ts). A table the server cannot create fails non-retryable, naming it.
 * Statements run with clickhouse-settings.ts' settings, where the server has them: CREATE accepts the
 * types the source accepted (LowCardinality on 18.16), INSERT neither deduplicates blocks nor merges
 * rows, so unmerged duplicates come back as they were. Nothing here merges or OPTIMIZEs a table.
 * Into a scratch database or another organization, streaming tables are created detached (see
 * {@link RestoreClickHouseResult.detachedStreams}).
 */
export async function restoreClickHouse(
  deps: ClickHouseRestoreDeps,
  input: RestoreClickHouseInput,
): Promise<RestoreClickHouseResult> {
  const ctx = Context.current();
  const source = organizationDataMap(input.orgId, deps.model);
  const database = input.scratchDatabase ?? organizationDataMap(input.targetOrgId, deps.model).clickhouse.database;
  const manifest = await readManifest(deps.store, input.orgId, input.backupId);
  const ddl = manifest.artifacts.filter((a) => a.store === 'clickhouse' && a.object.startsWith('clickhouse-ddl:'));
  const data = manifest.artifacts.filter((a) => a.store === 'clickhouse' && a.object.startsWith('clickhouse:'));
  // Only the organization's own database, restored under its own id, gets its streams back.
  const detachStreams = input.scratchDatabase !== undefined || input.targetOrgId !== input.orgId;
  const current = { table: '' };
  const heartbeats = startHeartbeats(() => current);
  try {
    if (ddl.length === 0) return { database, tables: 0, rows: 0, detachedStreams: [] };
    const ddlArtifacts = ddl.map((a) => ({
      object: a.object.slice('clickhouse-ddl:'.length),
      file: a.file,
      rawBytes: a.rawBytes,
    }));
    const dataArtifacts = data.map((a) => ({
      object: a.object.slice('clickhouse:'.length),
      file: a.file,
      rows: a.rows,
    }));
    // Every statement is read and checked, and the order planned, before anything runs: a tampered
    // backup changes nothing.
    const statements = await readRestorableDdl(deps.store, input, ddlArtifacts, source.clickhouse.database);
    try {
      planClickHouseRestore(
        [...statements].map(([object, statement]) => ({ object, statement })),
        dataArtifacts.map((a) => a.object),
        source.clickhouse.database,
      );
    } catch (err) {
      throw ddlFailure(err, input.targetOrgId, `the backup's ClickHouse objects`, 'restore');
    }
    await dropClickHouseDatabase(deps.clickhouse, database);
    await deps.clickhouse.command({ query: `CREATE DATABASE ${quoteClickHouseIdent(database)}` });
    const loaded = await loadClickHouseObjects(
      deps,
      { orgId: input.orgId, backupId: input.backupId },
      { ddl: ddlArtifacts, data: dataArtifacts, statements },
      { sourceDatabase: source.clickhouse.database, database, orgId: input.targetOrgId, detachStreams },
      current,
      ctx.cancellationSignal,
    );
    return { database, ...loaded };
  } catch (err) {
    throw classifyClickHouseError(err, input.targetOrgId, current.table || database);
  } finally {
    heartbeats.stop();
  }
}

/** A backup's statements and data files of one database, by object name (table, view, dictionary). */
export interface ClickHouseDatabaseArtifacts {
  ddl: Array<{ object: string; file: string; rawBytes?: number }>;
  /** The DDL already read and checked by {@link readRestorableDdl}; read here when absent. */
  statements?: Map<string, string>;
  data: Array<{ object: string; file: string; rows: number | null }>;
}

/**
 * Creates a backup's objects of one database inside `names.database` (which exists and is empty) and
 * loads their rows, in the order of clickhouse-restore-plan.ts; see {@link restoreClickHouse}.
 * `names.orgId` is named in failures; `current.table` follows the object being restored. With
 * `names.detachStreams` (a copy that is not the organization itself) streaming tables are created
 * detached, as `ENGINE = Null`.
 */
export async function loadClickHouseObjects(
  deps: Pick<ClickHouseRestoreDeps, 'clickhouse' | 'store'>,
  backup: BackupRef,
  artifacts: ClickHouseDatabaseArtifacts,
  names: { sourceDatabase: string; database: string; orgId: string; detachStreams?: boolean },
  current: { table: string },
  signal: AbortSignal,
): Promise<{ tables: number; rows: number; detachedStreams: string[] }> {
  const detachedStreams: string[] = [];
  const { database } = names;
  const settings = await readClickHouseRestoreSettings(deps.clickhouse);
  const statements =
    artifacts.statements ?? (await readRestorableDdl(deps.store, backup, artifacts.ddl, names.sourceDatabase));
  const dataFiles = new Map(artifacts.data.map((a) => [a.object, a]));
  let steps: ReturnType<typeof planClickHouseRestore>;
  try {
    steps = planClickHouseRestore(
      [...statements].map(([object, statement]) => ({ object, statement })),
      [...dataFiles.keys()],
      names.sourceDatabase,
    );
  } catch (err) {
    throw ddlFailure(err, names.orgId, `the backup's ClickHouse objects`, 'restore');
  }
  let rows = 0;
  for (const step of steps) {
    current.table = step.object;
    if (step.kind === 'create') {
      let statement: string;
      try {
        statement = step.statement;
        if (names.detachStreams && consumesFromOutside(step.described.engine)) {
          statement = detachStreamingTable(statement);
          detachedStreams.push(step.object);
        }
        statement = retargetCreateStatement(statement, names.sourceDatabase, database);
      } catch (err) {
        throw ddlFailure(err, names.orgId, step.object, 'restore');
      }
      try {
        await deps.clickhouse.command({ query: statement, clickhouse_settings: settings.create });
      } catch (err) {
        // A dropped connection is retried like anywhere else; only the server's refusal is final.
        if (isRetryableClickHouseError(err)) throw err;
        throw permanentFailure(
          FailureType.StoreRejected,
          `cannot create table ${step.object}: ${err instanceof Error ? err.message : String(err)}`,
          {
            store: 'clickhouse',
            orgId: names.orgId,
            object: `clickhouse-ddl:${step.object}`,
          },
        );
      }
    } else if (step.kind === 'load') {
      const artifact = dataFiles.get(step.object);
      if (!artifact) continue;
      const table = step.into === 'table' ? step.object : await innerTableOf(deps.clickhouse, database, step.object);
      const ref = { ...backup, path: artifact.file };
      const { values, contentEncoding } = await openRowsForInsert(deps.store, ref);
      // What the reader found wrong (a checksum, the compression) is the cause, whatever the
      // server then says about a request body that stopped short.
      let readerFailure: unknown;
      values.once('error', (err: unknown) => (readerFailure ??= err));
      try {
        const { stream } = await deps.clickhouse.exec({
          query: `INSERT INTO ${quoteClickHouseQualified(database, table)} FORMAT Native`,
          values,
          clickhouse_settings: settings.insert,
          abort_signal: signal,
          ...(contentEncoding ? { http_headers: { 'Content-Encoding': contentEncoding } } : {}),
        });
        // The answer to an INSERT is empty, but it must be read to free the connection.
        stream.resume();
        await finished(stream);
      } catch (err) {
        if (readerFailure !== undefined) throw readerFailure;
        if (isRetryableClickHouseError(err) || !(err instanceof Error) || err.name === 'AbortError') throw err;
        throw permanentFailure(
          FailureType.StoreRejected,
          `cannot load the rows of table ${step.object} from artifact ${artifact.file}: ClickHouse rejected them (code ${clickHouseErrorCode(err) ?? '?'}): ${printableExcerpt(messageOf(err))}`,
          // No cause: the workflow reports the root cause's message, which is the server's alone.
          { store: 'clickhouse', orgId: names.orgId, object: `clickhouse:${step.object}` },
        );
      }
      rows += artifact.rows ?? 0;
    }
  }
  return { tables: statements.size, rows, detachedStreams };
}

/**
 * The rows of a Native artifact as the INSERT's body: gzip artifacts (ClickHouse's own export
 * compression) as stored, with `Content-Encoding: gzip`, so the server inflates them in its own
 * threads and the worker passes on the compressed bytes alone (ClickHouse 18.16 tested, and every
 * later server reads gzip request bodies); anything else decompressed by the store.
 */
async function openRowsForInsert(
  store: BackupStore,
  ref: ArtifactRef,
): Promise<{ values: Readable; contentEncoding?: 'gzip' }> {
  const stored = await store.openStoredArtifactReader(ref, ['gzip']);
  return stored.compression === 'gzip' ? { values: stored.stream, contentEncoding: 'gzip' } : { values: stored.stream };
}

/** A server message about bytes it could not parse echoes them: cut to printable text of a readable length. */
function printableExcerpt(message: string): string {
  const printable = message.replace(/[^\x20-\x7e]+/g, '?');
  return printable.length > 300 ? `${printable.slice(0, 300)}…` : printable;
}

/** The implicit inner table the server made for materialized view `view` (its name depends on the server and the view's UUID). */
async function innerTableOf(client: ClickHouseClient, database: string, view: string): Promise<string> {
  const inner = (await listClickHouseObjects(client, database)).find((o) => o.innerTableOf === view);
  if (!inner)
    throw permanentFailure(
      FailureType.StoreRejected,
      `materialized view ${view} has no inner table to restore its rows into`,
      { store: 'clickhouse', object: view },
    );
  return inner.name;
}
