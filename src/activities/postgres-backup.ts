import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Context } from '@temporalio/activity';
import type { Pool, PoolClient } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { z } from 'zod';
import {
  CURRENT_POSTGRES_ROW_HASH,
  LEGACY_POSTGRES_ROW_HASH,
  manifestArtifactSchema,
  objectFingerprintSchema,
  POSTGRES_ROW_HASHES,
  type ManifestArtifact,
  type StoreBackupResult,
  type StoreProgressReport,
} from '../contracts/backup';
import { errorCodes, FailureType, isTransientNetworkError, messageOf, permanentFailure } from '../errors';
import { organizationDataMap, type OrganizationDataMap, type PlatformModel } from '../platform/data-map';
import { listOrgSchemas } from '../platform/discovery';
import type { ObjectFingerprint } from '../platform/fingerprint';
import { readDumpedSequences } from '../platform/archive-sequences';
import { fingerprintPostgres, withDumpedSequences } from '../platform/fingerprint-postgres';
import { quotePgIdent, quotePgLiteral } from '../platform/quoting';
import { sharedTableSql } from '../platform/platform-schema';
import { findFinishedArtifact, type ArtifactRef, type ArtifactWriteOptions, type BackupStore } from '../storage/backup-store';
import { startHeartbeats, startProgressReports } from './heartbeats';

export interface PostgresBackupDeps {
  postgres: Pool;
  postgresUrl: string;
  /** Directory of pg_dump/pg_restore/psql; empty means PATH. */
  binDir: string;
  store: BackupStore;
  model: PlatformModel;
  /** Sends in-flight progress to the calling workflow (its progress query); optional. */
  reportProgress?: (report: StoreProgressReport) => Promise<void>;
}

export const SCHEMAS_ARTIFACT = 'postgres/schemas.dump';
export const sharedArtifactPath = (schema: string, table: string) => `postgres/shared/${schema}.${table}.copy`;

/** Heartbeat of a PostgreSQL backup: every artifact is from one snapshot, so they resume as one group. */
const heartbeatSchema = z.object({
  snapshotGroup: z.array(manifestArtifactSchema),
  complete: z.boolean(),
  fingerprint: z.array(objectFingerprintSchema).optional(),
  postgresRowHash: z.enum(POSTGRES_ROW_HASHES).optional(),
});

/** `pg_dump`'s path, from the configured directory or PATH. */
export function pgTool(binDir: string, tool: 'pg_dump' | 'pg_dumpall' | 'pg_restore' | 'psql'): string {
  return binDir ? path.join(binDir, tool) : tool;
}

/** Counts COPY text rows (one line each: newlines inside values are escaped as `\n`). */
class LineCounter extends Transform {
  lines = 0;
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.lines++;
    done(null, chunk);
  }
}

/** Runs a tool and returns its stdout as text; used for `--version`. */
export async function toolVersion(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, ['--version'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`${command} --version exited with ${code}`))));
  });
}

/** The major version in "pg_dump (PostgreSQL) 15.20 (Debian…)" or "15.20". */
export function majorVersion(version: string): number {
  const match = /(\d+)(?:\.\d+)?/.exec(version.replace(/^[^\d]*/, ''));
  return match ? Number(match[1]) : NaN;
}

/**
 * Backs up one organization's PostgreSQL data from ONE snapshot: the shared-table rows (COPY in the
 * exporting transaction) and the dedicated schemas (`pg_dump --snapshot`), and fingerprints the same
 * snapshot. Because a retry takes a new snapshot, a retried attempt keeps the earlier artifacts only
 * when all of them were finished (heartbeat `complete`) and still hash right; otherwise it rewrites all.
 */
export async function backupPostgres(deps: PostgresBackupDeps, orgId: string, backupId: string): Promise<StoreBackupResult> {
  const map = organizationDataMap(orgId, deps.model);
  const ctx = Context.current();
  const pgDump = pgTool(deps.binDir, 'pg_dump');
  const previous = heartbeatSchema.safeParse(ctx.info.heartbeatDetails);
  const serverVersion = await queryServerVersion(deps.postgres);
  const dumpVersion = await toolVersion(pgDump).catch((err: unknown) => {
    throw permanentFailure(FailureType.ToolVersionMismatch, `cannot run ${pgDump}: ${messageOf(err)}`, { store: 'postgres', orgId, object: 'pg_dump' });
  });
  if (majorVersion(dumpVersion) < majorVersion(serverVersion)) {
    throw permanentFailure(FailureType.ToolVersionMismatch, `${dumpVersion} is older than the server (${serverVersion}); install pg_dump ${majorVersion(serverVersion)} or later`, {
      store: 'postgres',
      orgId,
      object: 'pg_dump',
    });
  }

  if (previous.success && previous.data.complete && previous.data.fingerprint) {
    // The attempt before finished every artifact and fingerprinted their snapshot, then died before
    // reporting: keep its work when every file still hashes to what it wrote.
    const kept = await keepFinished(deps.store, orgId, backupId, previous.data.snapshotGroup);
    if (kept) {
      const postgresRowHash = previous.data.postgresRowHash ?? LEGACY_POSTGRES_ROW_HASH;
      return { store: 'postgres', serverVersion, toolVersion: dumpVersion, artifacts: kept, fingerprint: previous.data.fingerprint, postgresRowHash, resumedArtifacts: kept.length };
    }
  }

  const client = await deps.postgres.connect();
  const artifacts: ManifestArtifact[] = [];
  const current = { object: '', bytes: 0 };
  const heartbeats = startHeartbeats(() => ({ snapshotGroup: artifacts, complete: false, current }));
  const reports = startProgressReports(() => progressReport('postgres', artifacts, current), deps.reportProgress);
  let fingerprinting: Promise<ObjectFingerprint[]> | undefined;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snapshot = (await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id')).rows[0]?.id ?? '';
    await assertOrganizationExists(client, map);
    // The fingerprint reads the same exported snapshot on its own connection, so it runs while the
    // rows are dumped instead of after them; the snapshot stays valid until this transaction ends.
    fingerprinting = fingerprintPostgres(deps.postgres, map, { snapshotId: snapshot, rowHash: CURRENT_POSTGRES_ROW_HASH });
    fingerprinting.catch(() => undefined);

    for (const table of map.postgres.sharedTables) {
      const columns = await tableColumns(client, table.schema, table.table);
      const file = sharedArtifactPath(table.schema, table.table);
      current.object = `shared:${table.schema}.${table.table}`;
      const counter = new LineCounter();
      const copy = client.query(
        copyTo(
          `COPY (SELECT ${columns.map(quotePgIdent).join(', ')} FROM ${sharedTableSql(table)} WHERE ${quotePgIdent(table.keyColumn)} = ${quotePgLiteral(map.orgId)}) TO STDOUT`,
        ),
      );
      const record = await writeFromStream(deps.store, { orgId, backupId, path: file }, { alreadyCompressed: false }, (sink) =>
        pipeline(copy, counter, new ProgressTap((n) => (current.bytes = n)), sink, { signal: ctx.cancellationSignal }),
      );
      artifacts.push({ store: 'postgres', object: current.object, file, ...record, rows: counter.lines, columns });
    }

    const schemas = await listOrgSchemas(client, map);
    if (schemas.length > 0) {
      current.object = 'schemas';
      // Level 1: a custom-format archive 15 % larger than the default level 6, in two thirds of the
      // time — backups race the raw tools (bench/backup.ts).
      const args = ['--format=custom', '--compress=1', `--snapshot=${snapshot}`, '--no-owner', '--no-privileges', `--dbname=${deps.postgresUrl}`];
      // Double quotes make each -n an exact name, not a pattern.
      for (const schema of schemas) args.push(`--schema="${schema}"`);
      const record = await writeFromStream(deps.store, { orgId, backupId, path: SCHEMAS_ARTIFACT }, { alreadyCompressed: true }, (sink) =>
        runToolInto(pgDump, args, sink, ctx.cancellationSignal, (n) => (current.bytes = n), { orgId, object: schemas.join(',') }),
      );
      artifacts.push({ store: 'postgres', object: 'schemas', file: SCHEMAS_ARTIFACT, ...record, rows: null });
    }

    // Sequences are not transactional: their state is what the archive holds, not a read of our own.
    const dumped = schemas.length > 0 ? await readDumpedSequences(pgTool(deps.binDir, 'pg_restore'), () => deps.store.openArtifactReader({ orgId, backupId, path: SCHEMAS_ARTIFACT }), ctx.cancellationSignal) : [];
    const fingerprint = withDumpedSequences(map, await fingerprinting, dumped);
    await client.query('COMMIT');
    heartbeats.stop();
    const postgresRowHash = CURRENT_POSTGRES_ROW_HASH;
    ctx.heartbeat({ snapshotGroup: artifacts, complete: true, fingerprint, postgresRowHash });
    return { store: 'postgres', serverVersion, toolVersion: dumpVersion, artifacts, fingerprint, postgresRowHash, resumedArtifacts: 0 };
  } catch (err) {
    // The fingerprint's query must end before the snapshot it reads goes away.
    await fingerprinting?.catch(() => undefined);
    await client.query('ROLLBACK').catch(() => undefined);
    throw classifyPostgresError(err, orgId);
  } finally {
    heartbeats.stop();
    reports.stop();
    client.release();
  }
}

/** Keeps a finished group only if every artifact is still there with the same checksum. */
async function keepFinished(store: BackupStore, orgId: string, backupId: string, group: ManifestArtifact[]): Promise<ManifestArtifact[] | undefined> {
  for (const artifact of group) {
    if (!(await findFinishedArtifact(store, { orgId, backupId, path: artifact.file }, artifact.sha256))) return undefined;
  }
  return group;
}

async function queryServerVersion(pool: Pool): Promise<string> {
  return (await pool.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v.split(' ')[0] ?? 'unknown';
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
    throw permanentFailure(FailureType.UnknownOrganization, `organization ${JSON.stringify(map.orgId)} does not exist (no row in ${orgTable.schema}.${orgTable.table})`, {
      store: 'postgres',
      orgId: map.orgId,
      object: `${orgTable.schema}.${orgTable.table}`,
    });
  }
}

/** Column names of a table in their physical order. */
export async function tableColumns(db: Pool | PoolClient, schema: string, table: string): Promise<string[]> {
  const result = await db.query<{ attname: string }>(
    `SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [schema, table],
  );
  return result.rows.map((r) => r.attname);
}

/** Reports bytes passing through, for heartbeats. */
export class ProgressTap extends Transform {
  private total = 0;
  constructor(private readonly report: (bytes: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.total += chunk.length;
    this.report(this.total);
    done(null, chunk);
  }
}

/** Opens a writer, lets `fill` stream into it, commits; aborts on any failure so nothing half-written stays. */
export async function writeFromStream(
  store: BackupStore,
  ref: ArtifactRef,
  options: ArtifactWriteOptions,
  fill: (sink: NodeJS.WritableStream) => Promise<void>,
): Promise<Omit<ManifestArtifact, 'store' | 'object' | 'file' | 'rows' | 'columns'>> {
  const writer = await store.openArtifactWriter(ref, options);
  try {
    await fill(writer.stream);
    const { path: _path, ...record } = await writer.commit();
    return record;
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/**
 * Runs a trusted tool (pg_dump) and streams its stdout into `sink`; stderr is kept for the message.
 * Cancellation kills the tool. A non-zero exit fails with the tool's own words.
 */
export async function runToolInto(
  command: string,
  args: string[],
  sink: NodeJS.WritableStream,
  signal: AbortSignal,
  onBytes: (bytes: number) => void,
  context: { orgId: string; object: string },
): Promise<void> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], signal });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  await pipeline(child.stdout, new ProgressTap(onBytes), sink);
  const code = await exited;
  if (code !== 0) {
    const words = stderr.trim() || `exit code ${code}`;
    const error = new Error(`${path.basename(command)} failed for ${context.object}: ${words}`);
    if (/server version mismatch|No space left/i.test(words)) {
      throw permanentFailure(/No space/i.test(words) ? FailureType.DiskFull : FailureType.ToolVersionMismatch, error.message, { store: 'postgres', ...context });
    }
    throw error;
  }
}

/** Transient (connection, shutdown, serialization) errors are thrown as they are and retried; the rest are permanent. */
export function classifyPostgresError(err: unknown, orgId: string): unknown {
  if (!(err instanceof Error) || err.name === 'ApplicationFailure' || err.name === 'AbortError') return err;
  if (isTransientNetworkError(err)) return err;
  // The SQLSTATE may sit on a cause when a step wrapped the driver's error with its context.
  const code = errorCodes(err).find((c) => /^[0-9A-Z]{5}$/.test(c));
  // 08: connection exception, 57P: operator intervention (shutdown), 40: transaction rollback, 53: resources.
  if (typeof code === 'string' && /^(08|57P|40|53)/.test(code)) return err;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) {
    return permanentFailure(FailureType.StoreRejected, `PostgreSQL rejected the backup (${code}): ${err.message}`, { store: 'postgres', orgId }, err);
  }
  return err;
}

/** Finished artifacts plus the one being written, as the workflow's progress query shows them. */
export function progressReport(store: 'postgres' | 'clickhouse', finished: ManifestArtifact[], current: { object: string; bytes: number }): StoreProgressReport {
  const artifacts = finished.map((a) => ({ store, object: a.object, bytes: a.rawBytes, rows: a.rows, done: true }));
  if (current.object && !finished.some((a) => a.object === current.object)) artifacts.push({ store, object: current.object, bytes: current.bytes, rows: null, done: false });
  return { store, artifacts };
}
