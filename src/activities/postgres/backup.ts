import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Context } from '@temporalio/activity';
import type { Pool, PoolClient } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { z } from 'zod';
import {
  CURRENT_POSTGRES_PRIVILEGE_FINGERPRINT,
  CURRENT_POSTGRES_ROW_HASH,
  LEGACY_POSTGRES_ROW_HASH,
  manifestArtifactSchema,
  objectFingerprintSchema,
  POSTGRES_PRIVILEGE_FINGERPRINTS,
  POSTGRES_ROW_HASHES,
  type ManifestArtifact,
  type StoreBackupResult,
  type StoreProgressReport,
} from '../../contracts/backup';
import { FailureType, messageOf, permanentFailure } from '../../errors';
import { readDumpedSequences } from '../../platform/archive-sequences';
import { organizationDataMap, type PlatformModel } from '../../platform/data-map';
import { listOrgSchemas, listRelations } from '../../platform/discovery';
import type { ObjectFingerprint } from '../../platform/fingerprint';
import { fingerprintPostgres, withDumpedSequences } from '../../platform/fingerprint-postgres';
import { readPostgresPrivileges, type PostgresCatalog } from '../../platform/postgres-privileges';
import { quotePgIdent, quotePgLiteral } from '../../platform/quoting';
import { sharedTableSql } from '../../platform/platform-schema';
import { findFinishedArtifact, type BackupStore } from '../../storage/backup-store';
import { ProgressTap, writeFromStream } from '../support/artifact-stream';
import { progressReport, startHeartbeats, startProgressReports } from '../support/heartbeats';
import { checkOrganizationBoundary } from './boundary';
import { classifyPostgresError } from './errors';
import { assertOrganizationExists } from './organization-row';
import { majorVersion, pgTool, runToolInto, toolVersion } from './tools';

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
/** Owners, privileges, policies and required extensions of the archive's objects (platform/postgres-privileges.ts). */
export const CATALOG_ARTIFACT = 'postgres/catalog.json';
/**
 * How the schemas archive is stored: since issue 17 an uncompressed custom-format archive in zstd
 * (manifest `compression: "zstd"`); earlier backups hold pg_dump's own gzip (`compression: "none"`).
 * zstd reads pg_dump's output itself (tools.ts `runToolInto`), so the store gets the zstd stream and
 * the manifest's `rawBytes` counts its bytes (it counted the archive's before 2026-12-01).
 * The store decodes either, so every reader (pg_restore, archive-sequences.ts) gets a custom archive.
 */
export const SCHEMAS_ARTIFACT_WRITE = { alreadyCompressed: true, zstdCompressed: true } as const;
export const sharedArtifactPath = (schema: string, table: string) => `postgres/shared/${schema}.${table}.copy`;

/** Heartbeat of a PostgreSQL backup: every artifact is from one snapshot, so they resume as one group. */
const heartbeatSchema = z.object({
  snapshotGroup: z.array(manifestArtifactSchema),
  complete: z.boolean(),
  fingerprint: z.array(objectFingerprintSchema).optional(),
  postgresRowHash: z.enum(POSTGRES_ROW_HASHES).optional(),
  postgresPrivileges: z.enum(POSTGRES_PRIVILEGE_FINGERPRINTS).optional(),
});

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

/**
 * Backs up one organization's PostgreSQL data from ONE snapshot: the shared-table rows (COPY in the
 * exporting transaction) and the dedicated schemas (`pg_dump --snapshot`), and fingerprints the same
 * snapshot. Because a retry takes a new snapshot, a retried attempt keeps the earlier artifacts only
 * when all of them were finished (heartbeat `complete`) and still hash right; otherwise it rewrites all.
 */
export async function backupPostgres(
  deps: PostgresBackupDeps,
  orgId: string,
  backupId: string,
): Promise<StoreBackupResult> {
  const map = organizationDataMap(orgId, deps.model);
  const ctx = Context.current();
  const pgDump = pgTool(deps.binDir, 'pg_dump');
  const previous = heartbeatSchema.safeParse(ctx.info.heartbeatDetails);
  const serverVersion = await queryServerVersion(deps.postgres);
  const dumpVersion = await toolVersion(pgDump).catch((err: unknown) => {
    throw permanentFailure(FailureType.ToolVersionMismatch, `cannot run ${pgDump}: ${messageOf(err)}`, {
      store: 'postgres',
      orgId,
      object: 'pg_dump',
    });
  });
  if (majorVersion(dumpVersion) < majorVersion(serverVersion)) {
    throw permanentFailure(
      FailureType.ToolVersionMismatch,
      `${dumpVersion} is older than the server (${serverVersion}); install pg_dump ${majorVersion(serverVersion)} or later`,
      {
        store: 'postgres',
        orgId,
        object: 'pg_dump',
      },
    );
  }

  if (previous.success && previous.data.complete && previous.data.fingerprint) {
    // The attempt before finished every artifact and fingerprinted their snapshot, then died before
    // reporting: keep its work when every file still hashes to what it wrote.
    const kept = await keepFinished(deps.store, orgId, backupId, previous.data.snapshotGroup);
    if (kept) {
      const postgresRowHash = previous.data.postgresRowHash ?? LEGACY_POSTGRES_ROW_HASH;
      return {
        store: 'postgres',
        serverVersion,
        toolVersion: dumpVersion,
        artifacts: kept,
        fingerprint: previous.data.fingerprint,
        postgresRowHash,
        postgresPrivileges: previous.data.postgresPrivileges ?? 'none',
        resumedArtifacts: kept.length,
      };
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
    // Every object of the backup is as of this snapshot (the manifest's pointsInTime).
    const snapshotAt = new Date().toISOString();
    await assertOrganizationExists(client, map);
    // What the data map does not cover is refused by name before anything is written.
    const extensions = await checkOrganizationBoundary(client, map, 'backup');
    // The fingerprint reads the same exported snapshot on its own connection, so it runs while the
    // rows are dumped instead of after them; the snapshot stays valid until this transaction ends.
    fingerprinting = fingerprintPostgres(deps.postgres, map, {
      snapshotId: snapshot,
      rowHash: CURRENT_POSTGRES_ROW_HASH,
    });
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
      const record = await writeFromStream(
        deps.store,
        { orgId, backupId, path: file },
        { alreadyCompressed: false },
        (sink) =>
          pipeline(copy, counter, new ProgressTap((n) => (current.bytes = n)), sink, {
            signal: ctx.cancellationSignal,
          }),
      );
      artifacts.push({ store: 'postgres', object: current.object, file, ...record, rows: counter.lines, columns });
    }

    const schemas = await listOrgSchemas(client, map);
    if (schemas.length > 0) {
      current.object = 'schemas';
      // Uncompressed, and compressed by zstd in a process of its own as it streams: pg_dump's own
      // gzip (even at level 1) runs in pg_dump's single thread and made the dump 25 % slower than
      // the server's COPY output; zstd -1 is smaller and runs on the other core (bench/backup.ts).
      // Owners and privileges stay in the archive; a restore filters its list (restore.ts).
      const args = ['--format=custom', '--compress=0', `--snapshot=${snapshot}`, `--dbname=${deps.postgresUrl}`];
      // Double quotes make each -n an exact name, not a pattern.
      for (const schema of schemas) args.push(`--schema="${schema}"`);
      const record = await writeFromStream(
        deps.store,
        { orgId, backupId, path: SCHEMAS_ARTIFACT },
        SCHEMAS_ARTIFACT_WRITE,
        (sink) =>
          runToolInto(
            pgDump,
            args,
            sink,
            ctx.cancellationSignal,
            (n) => (current.bytes = n),
            { orgId, object: schemas.join(',') },
            { zstd: true },
          ),
      );
      artifacts.push({ store: 'postgres', object: 'schemas', file: SCHEMAS_ARTIFACT, ...record, rows: null });

      // Privileges are data: read in the dump's snapshot, applied by a restore under mapped role names.
      current.object = 'catalog';
      const catalog: PostgresCatalog = {
        formatVersion: 1,
        ...(await readPostgresPrivileges(client, schemas)),
        extensions,
      };
      const catalogRecord = await writeFromStream(
        deps.store,
        { orgId, backupId, path: CATALOG_ARTIFACT },
        { alreadyCompressed: false },
        (sink) => pipeline(Readable.from([Buffer.from(JSON.stringify(catalog))]), sink),
      );
      artifacts.push({
        store: 'postgres',
        object: 'catalog',
        file: CATALOG_ARTIFACT,
        ...catalogRecord,
        rows: catalog.objects.length + catalog.defaultAcls.length + catalog.policies.length,
      });
    }

    // Sequences are not transactional: their state is what the archive holds, not a read of our own.
    // The archive holds the sequences this snapshot shows; with none, pg_restore is not run at all
    // (a process and a read of the archive, a tenth of a small organization's backup).
    const hasSequences = (await listRelations(client, schemas)).some((r) => r.kind === 'sequence');
    const dumped =
      schemas.length > 0 && hasSequences
        ? await readDumpedSequences(
            pgTool(deps.binDir, 'pg_restore'),
            () => deps.store.openArtifactReader({ orgId, backupId, path: SCHEMAS_ARTIFACT }),
            ctx.cancellationSignal,
          )
        : [];
    const fingerprint = withDumpedSequences(map, await fingerprinting, dumped);
    await client.query('COMMIT');
    heartbeats.stop();
    const postgresRowHash = CURRENT_POSTGRES_ROW_HASH;
    const postgresPrivileges = CURRENT_POSTGRES_PRIVILEGE_FINGERPRINT;
    ctx.heartbeat({ snapshotGroup: artifacts, complete: true, fingerprint, postgresRowHash, postgresPrivileges });
    return {
      store: 'postgres',
      serverVersion,
      toolVersion: dumpVersion,
      artifacts,
      fingerprint,
      postgresRowHash,
      postgresPrivileges,
      resumedArtifacts: 0,
      pointsInTime: [{ store: 'postgres', object: '*', from: snapshotAt, to: snapshotAt, how: 'snapshot' }],
    };
  } catch (err) {
    // The fingerprint's query must end before the snapshot it reads goes away.
    await fingerprinting?.catch(() => undefined);
    await client.query('ROLLBACK').catch(() => undefined);
    throw classifyPostgresError(err, orgId, 'the backup');
  } finally {
    heartbeats.stop();
    reports.stop();
    client.release();
  }
}

/** Keeps a finished group only if every artifact is still there with the same checksum. */
async function keepFinished(
  store: BackupStore,
  orgId: string,
  backupId: string,
  group: ManifestArtifact[],
): Promise<ManifestArtifact[] | undefined> {
  for (const artifact of group) {
    if (!(await findFinishedArtifact(store, { orgId, backupId, path: artifact.file }, artifact.sha256)))
      return undefined;
  }
  return group;
}

async function queryServerVersion(pool: Pool): Promise<string> {
  return (
    (await pool.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v.split(' ')[0] ??
    'unknown'
  );
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
