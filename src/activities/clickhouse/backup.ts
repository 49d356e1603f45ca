import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import { Context } from '@temporalio/activity';
import { z } from 'zod';
import {
  CURRENT_CLICKHOUSE_ROW_HASH,
  manifestArtifactSchema,
  objectFingerprintSchema,
  pointInTimeSchema,
  type ManifestArtifact,
  type PointInTime,
  type StoreBackupResult,
  type StoreProgressReport,
} from '../../contracts/backup';
import { FailureType, permanentFailure } from '../../errors';
import {
  backupRefusal,
  collapsesInMerges,
  dataObjectName,
  listClickHouseObjects,
  readCreateStatement,
  type ClickHouseObject,
} from '../../platform/clickhouse-catalog';
import { checkClickHouseStatementMovable, ddlFailure } from '../../platform/clickhouse-ddl';
import { clickHouseErrorCode } from '../../platform/clickhouse-error-code';
import { organizationDataMap, type PlatformModel } from '../../platform/data-map';
import { clickHouseDatabaseExists } from '../../platform/discovery';
import { readClickHouseRestoreSettings, type ClickHouseRestoreSettings } from '../../platform/clickhouse-settings';
import type { ObjectFingerprint } from '../../platform/fingerprint';
import { fingerprintClickHouseTable } from '../../platform/fingerprint-clickhouse';
import { encodeObjectFileName } from '../../platform/object-file-name';
import { quoteClickHouseIdent, quoteClickHouseQualified } from '../../platform/quoting';
import { findFinishedArtifact, type ArtifactRef, type BackupStore } from '../../storage/backup-store';
import { ProgressTap, writeFromStream } from '../support/artifact-stream';
import { progressReport, startHeartbeats, startProgressReports } from '../support/heartbeats';
import { classifyClickHouseError } from './errors';
import { dropClickHouseDatabase } from './restore';
import { backupStagingDatabase, copyTableForBackup, dropTableCopy, isCopyRefused, type TableCopy } from './table-copy';

export interface ClickHouseBackupDeps {
  clickhouse: ClickHouseClient;
  /** gzip level (1-9) the server compresses exports with. */
  exportGzipLevel: number;
  store: BackupStore;
  model: PlatformModel;
  /** Sends in-flight progress to the calling workflow (its progress query); optional. */
  reportProgress?: (report: StoreProgressReport) => Promise<void>;
}

/** Any object name becomes one safe path segment (see object-file-name.ts); plain names keep their old paths. */
export const clickHouseDdlPath = (table: string) => `clickhouse/${encodeObjectFileName(table)}.sql`;
export const clickHouseDataPath = (table: string) => `clickhouse/${encodeObjectFileName(table)}.native`;

/** Finished artifacts, and for each data artifact the fingerprint and moment of its rows. */
const heartbeatSchema = z.object({
  finished: z.array(manifestArtifactSchema),
  fingerprints: z.array(objectFingerprintSchema).optional(),
  pointsInTime: z.array(pointInTimeSchema).optional(),
});
/** In-place reads (no right to copy) of a table that keeps changing, before the backup gives up on it. */
const STABLE_READ_ATTEMPTS = 3;
const countRow = z.object({ rows: z.union([z.string(), z.number()]) });
const versionRow = z.object({ version: z.string() });

/**
 * Asks the server to gzip an export in its own threads (level 1 by default: fastest); the bytes are
 * stored as they come, so the worker neither parses nor re-compresses hundreds of MB (bench/backup.ts).
 */
function serverGzip(level: number) {
  return {
    clickhouse_settings: { enable_http_compression: 1, http_zlib_compression_level: String(level) },
    // The client adds Accept-Encoding only when it is built to decompress every response.
    http_headers: { 'Accept-Encoding': 'gzip' },
    decompress_response_stream: false,
  } as const;
}
/**
 * The server refusing the compression settings: 164 READONLY ("Cannot override setting … in readonly
 * mode", a readonly=1 user the probe missed) and 452 SETTING_CONSTRAINT_VIOLATION (a settings
 * profile's constraint, ClickHouse 19.14 and later).
 */
const SETTINGS_REFUSED = ['164', '452'];

/**
 * Backs up one organization's ClickHouse database: per object its CREATE statement and, for engines
 * that own rows (clickhouse-catalog.ts), its data in `Native` format, streamed; a materialized view's
 * implicit inner table is filed under its view. Views and forwarding engines (Buffer, Distributed,
 * Merge, …) are never read. An object of an unknown engine, or whose statement cannot be moved to
 * another database, fails the backup naming it. ClickHouse has no snapshots: each table's rows are
 * exported and fingerprinted from one private copy of it (table-copy.ts, in the backup's own
 * `eloquent_scratch_backup_<id>_<attempt>` database, dropped at the end), so its data and its fingerprint are
 * the same rows while the organization writes; tables are each of their own moment (`pointsInTime`).
 * A retried attempt keeps every artifact an earlier attempt finished (heartbeat details, with the
 * fingerprint and moment of its rows) when its checksum still matches.
 */
export async function backupClickHouse(
  deps: ClickHouseBackupDeps,
  orgId: string,
  backupId: string,
): Promise<StoreBackupResult> {
  const map = organizationDataMap(orgId, deps.model);
  const database = map.clickhouse.database;
  const ctx = Context.current();
  const earlier = heartbeatSchema.safeParse(ctx.info.heartbeatDetails);
  const finishedBefore = new Map((earlier.success ? earlier.data.finished : []).map((a) => [a.file, a]));
  const fingerprintsBefore = new Map(
    (earlier.success ? (earlier.data.fingerprints ?? []) : []).map((f) => [f.object, f]),
  );
  const momentsBefore = new Map((earlier.success ? (earlier.data.pointsInTime ?? []) : []).map((m) => [m.object, m]));
  const artifacts: ManifestArtifact[] = [];
  const fingerprint: ObjectFingerprint[] = [];
  const pointsInTime: PointInTime[] = [];
  const staging = backupStagingDatabase(backupId, ctx.info.attempt);
  let copying = true;
  // The staging database is created once, by the first table copied (tables are copied one by one).
  let stagingCreated = false;
  let restoreSettings: ClickHouseRestoreSettings | undefined;
  const createSettings = async () => (restoreSettings ??= await readClickHouseRestoreSettings(deps.clickhouse));
  const current = { object: '', bytes: 0 };
  const heartbeats = startHeartbeats(() => ({ finished: artifacts, fingerprints: fingerprint, pointsInTime, current }));
  const reports = startProgressReports(() => progressReport('clickhouse', artifacts, current), deps.reportProgress);
  let resumed = 0;
  const compression = { server: true };
  try {
    const version = await queryVersion(deps.clickhouse);
    const readonly = await readonlyLevel(deps.clickhouse);
    // readonly=1 refuses any setting (such as HTTP compression); readonly=2 sets settings but creates
    // nothing, so like readonly=1 it reads tables in place (see exportTable).
    compression.server = readonly !== '1';
    copying = readonly === '0';
    if (!(await clickHouseDatabaseExists(deps.clickhouse, database))) {
      return {
        store: 'clickhouse',
        serverVersion: version,
        artifacts: [],
        fingerprint: [],
        clickhouseRowHash: CURRENT_CLICKHOUSE_ROW_HASH,
        resumedArtifacts: 0,
      };
    }
    // Copies of earlier attempts (a crashed worker's) are dropped; this attempt's go at its end.
    for (let attempt = 1; attempt < ctx.info.attempt; attempt++)
      await dropClickHouseDatabase(deps.clickhouse, backupStagingDatabase(backupId, attempt));
    const objects = await listClickHouseObjects(deps.clickhouse, database);
    for (const object of objects) {
      const refusal = backupRefusal(object);
      if (refusal)
        throw permanentFailure(FailureType.StoreRejected, `cannot back up table ${object.name}: ${refusal}`, {
          store: 'clickhouse',
          orgId,
          object: object.name,
        });
    }
    for (const table of objects) {
      const name = dataObjectName(table);
      const steps: Array<{ file: string; object: string; produce: () => Promise<ManifestArtifact> }> = [];
      // An implicit inner table is created by its view's statement.
      if (table.innerTableOf === undefined) {
        steps.push({
          file: clickHouseDdlPath(table.name),
          object: `clickhouse-ddl:${table.name}`,
          produce: async () => {
            const statement = await readCreateStatement(deps.clickhouse, database, table);
            try {
              checkClickHouseStatementMovable(statement, database);
            } catch (err) {
              throw ddlFailure(err, orgId, table.name, 'back up');
            }
            const record = await writeFromStream(
              deps.store,
              { orgId, backupId, path: clickHouseDdlPath(table.name) },
              { alreadyCompressed: false },
              (sink) => pipeline(Readable.from([Buffer.from(`${statement}\n`)]), sink),
            );
            return {
              store: 'clickhouse',
              object: `clickhouse-ddl:${table.name}`,
              file: clickHouseDdlPath(table.name),
              ...record,
              rows: null,
            };
          },
        });
      }
      if (table.engineClass === 'data') {
        steps.push({
          file: clickHouseDataPath(name),
          object: `clickhouse:${name}`,
          produce: () => exportTable(table, name),
        });
      }
      for (const step of steps) {
        current.object = step.object;
        current.bytes = 0;
        const before = finishedBefore.get(step.file);
        // Rows are kept only with the fingerprint and moment of that same export.
        const keptRows = step.object.startsWith('clickhouse:')
          ? { fingerprint: fingerprintsBefore.get(step.object), moment: momentsBefore.get(step.object) }
          : undefined;
        if (
          before &&
          (keptRows === undefined || (keptRows.fingerprint && keptRows.moment)) &&
          (await findFinishedArtifact(deps.store, { orgId, backupId, path: step.file }, before.sha256))
        ) {
          artifacts.push(before);
          if (keptRows?.fingerprint && keptRows.moment) {
            fingerprint.push(keptRows.fingerprint);
            pointsInTime.push(keptRows.moment);
          }
          resumed++;
          continue;
        }
        artifacts.push(await step.produce());
      }
    }
    return {
      store: 'clickhouse',
      serverVersion: version,
      artifacts,
      fingerprint,
      clickhouseRowHash: CURRENT_CLICKHOUSE_ROW_HASH,
      resumedArtifacts: resumed,
      pointsInTime,
    };
  } catch (err) {
    throw classifyClickHouseError(err, orgId, current.object || database);
  } finally {
    heartbeats.stop();
    reports.stop();
    await dropClickHouseDatabase(deps.clickhouse, staging).catch(() => undefined);
  }

  /**
   * Exports one table's rows and fingerprints the same rows: both read a private copy of the table
   * (table-copy.ts), made just before, so writes to the source meanwhile are in neither or in both.
   * A user without the right to copy reads the table in place, fingerprinted before and after the
   * export: equal means nothing changed in between; a table that changes during every one of
   * {@link STABLE_READ_ATTEMPTS} exports fails the backup, naming it.
   */
  async function exportTable(table: ClickHouseObject, name: string): Promise<ManifestArtifact> {
    const object = `clickhouse:${name}`;
    if (copying) {
      let copy: TableCopy | undefined;
      try {
        if (!stagingCreated) {
          await deps.clickhouse.command({ query: `CREATE DATABASE IF NOT EXISTS ${quoteClickHouseIdent(staging)}` });
          stagingCreated = true;
        }
        copy = await copyTableForBackup(deps.clickhouse, await createSettings(), database, staging, table);
        const [artifact, print] = await Promise.all([
          writeTableData(copy.database, table, name),
          fingerprintClickHouseTable(deps.clickhouse, copy.database, table, object, CURRENT_CLICKHOUSE_ROW_HASH),
        ]);
        fingerprint.push(print);
        pointsInTime.push({ store: 'clickhouse', object, from: copy.from, to: copy.to, how: copy.how });
        return artifact;
      } catch (err) {
        if (!isCopyRefused(err)) throw err;
        // Not allowed to make copies (a readonly or a CREATE-less user): read in place from now on.
        copying = false;
      } finally {
        if (copy) await dropTableCopy(deps.clickhouse, copy);
      }
    }
    const fingerprintInPlace = () =>
      fingerprintClickHouseTable(deps.clickhouse, database, table, object, CURRENT_CLICKHOUSE_ROW_HASH);
    for (let attempt = 1; attempt <= STABLE_READ_ATTEMPTS; attempt++) {
      const from = new Date().toISOString();
      const before = await fingerprintInPlace();
      const artifact = await writeTableData(database, table, name);
      const after = await fingerprintInPlace();
      if (before.rows === after.rows && before.hash === after.hash && after.rows === artifact.rows) {
        fingerprint.push(after);
        pointsInTime.push({ store: 'clickhouse', object, from, to: new Date().toISOString(), how: 'unchanged-reads' });
        return artifact;
      }
    }
    throw permanentFailure(
      FailureType.StoreRejected,
      `table ${name} changed during each of ${STABLE_READ_ATTEMPTS} exports, and the backup user may not copy it ` +
        `(grant it CREATE TABLE and INSERT on eloquent_scratch_* databases, or pause the table's writers)`,
      { store: 'clickhouse', orgId, object: name },
    );
  }

  /** Streams `readFrom`.`table.name` as Native into the table's data artifact. */
  async function writeTableData(readFrom: string, table: ClickHouseObject, name: string): Promise<ManifestArtifact> {
    const record = await exportTableToArtifact(
      deps,
      { orgId, backupId, path: clickHouseDataPath(name) },
      quoteClickHouseQualified(readFrom, table.name),
      table.engine,
      compression,
      (n) => (current.bytes = n),
    );
    return { store: 'clickhouse', object: `clickhouse:${name}`, file: clickHouseDataPath(name), ...record };
  }
}

/**
 * Streams one table's rows (`SELECT * … FORMAT Native`) into an artifact, gzipped by the server
 * when the user may set settings (`compression.server`, switched off for good when the server
 * refuses them), with the read order pinned for tables whose merges collapse rows.
 * @returns the stored record and the row count read just before the export.
 */
export async function exportTableToArtifact(
  deps: Pick<ClickHouseBackupDeps, 'clickhouse' | 'exportGzipLevel' | 'store'>,
  ref: ArtifactRef,
  qualified: string,
  engine: string,
  compression: { server: boolean },
  onBytes: (bytes: number) => void,
): Promise<Omit<ManifestArtifact, 'store' | 'object' | 'file' | 'columns'>> {
  const signal = Context.current().cancellationSignal;
  const counted = await deps.clickhouse.query({
    query: `SELECT toString(count()) AS rows FROM ${qualified}`,
    format: 'JSONEachRow',
  });
  const rows = Number(z.array(countRow).parse(await counted.json<unknown>())[0]?.rows ?? 0);
  const query = `SELECT * FROM ${qualified} FORMAT Native`;
  // A user who may set no setting (readonly=1) cannot pin the read order either: its export
  // reads parts as the server schedules them (documented in the README as a limit).
  const order = compression.server ? exportOrderSettings(engine) : {};
  let response: Awaited<ReturnType<ClickHouseClient['exec']>>;
  try {
    const gzip = compression.server ? serverGzip(deps.exportGzipLevel) : undefined;
    response = await deps.clickhouse.exec({
      query,
      abort_signal: signal,
      ...gzip,
      clickhouse_settings: { ...gzip?.clickhouse_settings, ...order },
    });
  } catch (err: unknown) {
    // Settings refused after all (e.g. a settings constraint): export uncompressed, the store gzips.
    if (!compression.server || !SETTINGS_REFUSED.includes(clickHouseErrorCode(err) ?? '')) throw err;
    compression.server = false;
    response = await deps.clickhouse.exec({ query, abort_signal: signal });
  }
  const { stream, response_headers } = response;
  // ClickHouse 18 sends an empty result without Content-Encoding: then the store compresses.
  const gzipped = String(response_headers['content-encoding'] ?? '').toLowerCase() === 'gzip';
  const record = await writeFromStream(deps.store, ref, { alreadyCompressed: false, gzipped }, (sink) =>
    pipeline(stream, new ProgressTap(onBytes), sink, { signal }),
  ).catch((err: unknown) => {
    // A writer that could not open leaves the response unread; free its connection.
    stream.destroy();
    throw err;
  });
  return { ...record, rows };
}

/**
 * Settings that make an export keep the order of the table's parts. Threads read parts in any order,
 * and where merges collapse rows the order decides the outcome: a ReplacingMergeTree without a
 * version keeps the last row of a key, a CollapsingMergeTree pairs rows in sequence, a groupArray
 * state lists values as merged. One thread reads parts in order, and the restore's INSERT sorts
 * stably, so a copy merges as the source would.
 */
function exportOrderSettings(engine: string): { max_threads?: number } {
  return collapsesInMerges(engine) ? { max_threads: 1 } : {};
}

/** The user's `readonly` level: '0' may do anything, '1' only read with no settings, '2' read and set settings. */
async function readonlyLevel(client: ClickHouseClient): Promise<string> {
  const result = await client.query({
    query: "SELECT value FROM system.settings WHERE name = 'readonly'",
    format: 'JSONEachRow',
  });
  return z.array(z.object({ value: z.string() })).parse(await result.json<unknown>())[0]?.value ?? '0';
}

/** False for a readonly=1 user, whom the server refuses any setting (such as HTTP compression). */
export async function maySetSettings(client: ClickHouseClient): Promise<boolean> {
  return (await readonlyLevel(client)) !== '1';
}

export async function queryVersion(client: ClickHouseClient): Promise<string> {
  const result = await client.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' });
  return z.array(versionRow).parse(await result.json<unknown>())[0]?.version ?? 'unknown';
}
