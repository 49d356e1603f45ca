import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Context } from '@temporalio/activity';
import type { Pool, PoolClient } from 'pg';
import { CURRENT_POSTGRES_ROW_HASH, type ManifestArtifact } from '../../contracts/backup';
import type { PlatformOrganization, PlatformPart } from '../../contracts/platform-backup';
import { FailureType, messageOf, permanentFailure } from '../../errors';
import { readDumpedSequences } from '../../platform/archive-sequences';
import { organizationDataMap, type PlatformModel } from '../../platform/data-map';
import { fingerprintPostgres, withDumpedSequences } from '../../platform/fingerprint-postgres';
import {
  fingerprintPostgresOutsideOrganizations,
  listPostgresOrganizations,
} from '../../platform/fingerprint-platform';
import { encodeObjectFileName } from '../../platform/object-file-name';
import { sharedTableSql } from '../../platform/platform-schema';
import { quotePgIdent } from '../../platform/quoting';
import type { BackupStore } from '../../storage/backup-store';
import { createPostgresPool, databaseUrl } from '../../store-clients';
import { writeFromStream } from '../support/artifact-stream';
import { startHeartbeats } from '../support/heartbeats';
import { classifyPostgresError } from './errors';
import { clearOrganizationPostgres } from './purge';
import { SCRATCH_DATABASE_PREFIX } from './scratch';
import { majorVersion, pgTool, runToolFrom, runToolInto, toolVersion } from './tools';

/** Folder of whole-platform artifacts in the backup store; never a valid organization id. */
export const PLATFORM_BACKUP_ORG = '_platform';
/** The globals of the cluster (roles, tablespaces), `pg_dumpall --globals-only`. */
export const PLATFORM_GLOBALS_ARTIFACT = 'postgres/globals.sql';
/** One custom-format archive per database: `pg_restore --jobs` restores it in parallel. */
export const platformDatabaseArtifact = (database: string) =>
  `postgres/databases/${encodeObjectFileName(database)}.dump`;
/** The PostgreSQL part of a platform backup, merged into its manifest last. */
export const POSTGRES_PART_FILE = 'postgres-part.json';

export interface PostgresPlatformDeps {
  postgres: Pool;
  postgresUrl: string;
  binDir: string;
  store: BackupStore;
  model: PlatformModel;
}

/** Roles and tablespaces of the cluster (`pg_dumpall --globals-only`), which no per-organization dump holds. */
async function writeGlobals(deps: PostgresPlatformDeps, backupId: string): Promise<ManifestArtifact> {
  const ctx = Context.current();
  const record = await writeFromStream(
    deps.store,
    { orgId: PLATFORM_BACKUP_ORG, backupId, path: PLATFORM_GLOBALS_ARTIFACT },
    { alreadyCompressed: false },
    (sink) =>
      runToolInto(
        pgTool(deps.binDir, 'pg_dumpall'),
        ['--globals-only', `--dbname=${deps.postgresUrl}`],
        sink,
        ctx.cancellationSignal,
        () => undefined,
        { orgId: PLATFORM_BACKUP_ORG, object: 'globals' },
      ),
  );
  return { store: 'postgres', object: 'globals', file: PLATFORM_GLOBALS_ARTIFACT, ...record, rows: null };
}

/**
 * The globals alone, with a manifest of their own: what `backupPlatform` wrote before the platform
 * dump existed. Kept for runs started by older code (workflow replay).
 */
export async function dumpPlatformGlobals(deps: PostgresPlatformDeps, backupId: string): Promise<ManifestArtifact> {
  const artifact = await writeGlobals(deps, backupId);
  const { store: _store, object: _object, rows: _rows, ...record } = artifact;
  await deps.store.writeJson({ orgId: PLATFORM_BACKUP_ORG, backupId }, 'manifest.json', {
    backupId,
    artifacts: [record],
    writtenAt: new Date().toISOString(),
  });
  return artifact;
}

/** Databases a platform dump holds: every one that accepts connections, but templates and our scratch copies. */
async function listDatabases(db: Pool): Promise<string[]> {
  const result = await db.query<{ datname: string }>(
    `SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate AND left(datname, length($1)) <> $1 ORDER BY datname`,
    [SCRATCH_DATABASE_PREFIX],
  );
  return result.rows.map((r) => r.datname);
}

/**
 * The runbook's `pg_dumpall`, restorable in parallel: the globals, then per database a custom-format
 * `pg_dump` taken from an exported snapshot, and in the same snapshot the fingerprint of every
 * organization of the platform database (schemas, shared rows; sequences as the archive holds them)
 * and of every table that belongs to no organization. Writes the part document; the workflow writes
 * the manifest. A retry rewrites every artifact (each dump needs its snapshot's fingerprint).
 */
export async function dumpPlatformPostgres(deps: PostgresPlatformDeps, backupId: string): Promise<PlatformPart> {
  const ctx = Context.current();
  const pgDump = pgTool(deps.binDir, 'pg_dump');
  const current = { object: 'globals', bytes: 0 };
  const artifacts: ManifestArtifact[] = [];
  const heartbeats = startHeartbeats(() => ({ current, finished: artifacts.map((a) => a.file) }));
  try {
    const serverVersion =
      (await deps.postgres.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v.split(
        ' ',
      )[0] ?? 'unknown';
    const dumpVersion = await toolVersion(pgDump).catch((err: unknown) => {
      throw permanentFailure(FailureType.ToolVersionMismatch, `cannot run ${pgDump}: ${messageOf(err)}`, {
        store: 'postgres',
        object: 'pg_dump',
      });
    });
    if (majorVersion(dumpVersion) < majorVersion(serverVersion))
      throw permanentFailure(
        FailureType.ToolVersionMismatch,
        `${dumpVersion} is older than the server (${serverVersion}); install pg_dump ${majorVersion(serverVersion)} or later`,
        { store: 'postgres', object: 'pg_dump' },
      );
    artifacts.push(await writeGlobals(deps, backupId));
    const platformDatabase = new URL(deps.postgresUrl).pathname.slice(1);
    const databases = await listDatabases(deps.postgres);
    const organizations: PlatformOrganization[] = [];
    const platformObjects: PlatformPart['platformObjects'] = [];
    for (const database of databases) {
      current.object = `database:${database}`;
      current.bytes = 0;
      const url = databaseUrl(deps.postgresUrl, database);
      const pool = createPostgresPool(url, 2);
      pool.on('error', () => undefined);
      let client: PoolClient | undefined;
      try {
        client = await pool.connect();
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const snapshot = (await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id')).rows[0]?.id ?? '';
        const file = platformDatabaseArtifact(database);
        const record = await writeFromStream(
          deps.store,
          { orgId: PLATFORM_BACKUP_ORG, backupId, path: file },
          { alreadyCompressed: true },
          (sink) =>
            runToolInto(
              pgDump,
              ['--format=custom', '--compress=1', `--snapshot=${snapshot}`, '--create', `--dbname=${url}`],
              sink,
              ctx.cancellationSignal,
              (n) => (current.bytes = n),
              { orgId: PLATFORM_BACKUP_ORG, object: `database ${database}` },
            ),
        );
        artifacts.push({ store: 'postgres', object: `database:${database}`, file, ...record, rows: null });
        // Organizations live in the platform database (the data map's); elsewhere every table is the platform's.
        if (database === platformDatabase) {
          const dumped = await readDumpedSequences(
            pgTool(deps.binDir, 'pg_restore'),
            () => deps.store.openArtifactReader({ orgId: PLATFORM_BACKUP_ORG, backupId, path: file }),
            ctx.cancellationSignal,
          );
          for (const orgId of await listPostgresOrganizations(client, deps.model)) {
            current.object = `organization ${orgId}`;
            const map = organizationDataMap(orgId, deps.model);
            const live = await fingerprintPostgres(pool, map, {
              snapshotId: snapshot,
              rowHash: CURRENT_POSTGRES_ROW_HASH,
            });
            const own = dumped.filter((d) => map.postgres.isOrgSchema(d.schema));
            organizations.push({ orgId, objects: withDumpedSequences(map, live, own) });
          }
          platformObjects.push(...(await fingerprintPostgresOutsideOrganizations(client, database, deps.model)));
        } else {
          platformObjects.push(
            ...(await fingerprintPostgresOutsideOrganizations(client, database, deps.model, {
              organizationsHere: false,
            })),
          );
        }
        await client.query('COMMIT');
      } finally {
        client?.release();
        await pool.end();
      }
    }
    const part: PlatformPart = {
      store: 'postgres',
      serverVersion,
      toolVersion: dumpVersion,
      platformDatabase,
      databases,
      artifacts,
      organizations,
      platformObjects,
      rowHash: CURRENT_POSTGRES_ROW_HASH,
    };
    await deps.store.writeJson({ orgId: PLATFORM_BACKUP_ORG, backupId }, POSTGRES_PART_FILE, part);
    return part;
  } catch (err) {
    throw classifyPostgresError(err, undefined, 'the platform dump', current.object);
  } finally {
    heartbeats.stop();
  }
}

/** Roles a fresh cluster has before anything is restored: the bootstrap superuser and the built-in `pg_*` roles. */
const BUILT_IN_ROLE = /^pg_/;

/**
 * Refuses a target cluster that is not empty — a database besides `postgres` and the templates, a
 * table in `postgres`, a role besides the connecting superuser — naming what it found, so a restore
 * never merges into or overwrites a live cluster.
 */
export async function assertPostgresTargetEmpty(targetUrl: string): Promise<void> {
  const pool = createPostgresPool(targetUrl, 1);
  pool.on('error', () => undefined);
  try {
    const found: string[] = [];
    const dbs = await pool.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1') ORDER BY 1`,
    );
    found.push(...dbs.rows.map((r) => `database ${r.datname}`));
    const roles = await pool.query<{ rolname: string }>(
      'SELECT rolname FROM pg_roles WHERE rolname <> current_user ORDER BY 1',
    );
    found.push(...roles.rows.filter((r) => !BUILT_IN_ROLE.test(r.rolname)).map((r) => `role ${r.rolname}`));
    const postgresDb = createPostgresPool(databaseUrl(targetUrl, 'postgres'), 1);
    postgresDb.on('error', () => undefined);
    try {
      const tables = await postgresDb.query<{ name: string }>(
        `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1 LIMIT 5`,
      );
      found.push(...tables.rows.map((r) => `relation postgres.${r.name}`));
    } finally {
      await postgresDb.end();
    }
    if (found.length > 0)
      throw permanentFailure(
        FailureType.RestoreRefused,
        `the target cluster is not empty (${found.slice(0, 10).join(', ')}${found.length > 10 ? ', …' : ''}); a platform restore needs a fresh cluster`,
        { store: 'postgres', object: redactedAddress(targetUrl) },
      );
  } catch (err) {
    throw classifyPostgresError(err, undefined, 'checking the restore target', redactedAddress(targetUrl));
  } finally {
    await pool.end();
  }
}

/** host:port/database of a URL, never its password. */
export function redactedAddress(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
}

/** psql's complaint about a role the globals create that exists already: the bootstrap superuser, or an earlier attempt's. */
const ROLE_EXISTS = /^psql:[^\n]*ERROR:\s+role "[^"]+" already exists$/;

/**
 * Restores a platform backup's PostgreSQL part into an empty cluster (checked by the workflow first):
 * the globals with psql, then every database with `pg_restore --create --jobs` from a local copy of
 * its archive (parallel restore needs a seekable file). A database a failed attempt left half
 * restored is dropped and restored again; the target was empty, so nothing else is lost.
 */
export async function restorePlatformPostgres(
  deps: Pick<PostgresPlatformDeps, 'binDir' | 'store'>,
  input: { backupId: string; targetUrl: string; jobs: number; part: PlatformPart },
): Promise<{ databases: string[] }> {
  const ctx = Context.current();
  const current = { object: 'globals' };
  const heartbeats = startHeartbeats(() => current);
  const maintenanceUrl = databaseUrl(input.targetUrl, 'template1');
  const maintenance = createPostgresPool(maintenanceUrl, 1);
  maintenance.on('error', () => undefined);
  const dir = await mkdtemp(path.join(tmpdir(), 'platform-restore-'));
  try {
    const globals = input.part.artifacts.find((a) => a.object === 'globals');
    if (globals) {
      // ON_ERROR_STOP stays off so the bootstrap role's CREATE ROLE may fail; every other error fails the restore.
      const stderr = await runToolFrom(
        pgTool(deps.binDir, 'psql'),
        ['-X', '-q', '-v', 'ON_ERROR_STOP=0', `--dbname=${maintenanceUrl}`, '-f', '-'],
        await deps.store.openArtifactReader({
          orgId: PLATFORM_BACKUP_ORG,
          backupId: input.backupId,
          path: globals.file,
        }),
        ctx.cancellationSignal,
        'psql (globals)',
        { object: 'globals' },
      );
      const errors = stderr
        .split('\n')
        .filter((line) => /ERROR:/.test(line))
        .filter((line) => !ROLE_EXISTS.test(line.trim()));
      if (errors.length > 0)
        throw permanentFailure(
          FailureType.StoreRejected,
          `restoring the globals failed: ${errors.slice(0, 5).join('; ')}`,
          {
            store: 'postgres',
            object: 'globals',
          },
        );
    }
    const restored: string[] = [];
    for (const artifact of input.part.artifacts.filter((a) => a.object.startsWith('database:'))) {
      const database = artifact.object.slice('database:'.length);
      current.object = `database ${database}`;
      const local = path.join(dir, 'archive.dump');
      await deps.store.copyArtifactToFile(
        { orgId: PLATFORM_BACKUP_ORG, backupId: input.backupId, path: artifact.file },
        local,
        ctx.cancellationSignal,
      );
      await maintenance.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [database],
      );
      await maintenance.query(`DROP DATABASE IF EXISTS ${quotePgIdent(database)}`);
      await runToolFrom(
        pgTool(deps.binDir, 'pg_restore'),
        ['--create', '--exit-on-error', `--jobs=${input.jobs}`, `--dbname=${maintenanceUrl}`, local],
        undefined,
        ctx.cancellationSignal,
        `pg_restore of database ${database}`,
        { object: `database ${database}` },
      );
      await rm(local, { force: true });
      restored.push(database);
    }
    return { databases: restored };
  } catch (err) {
    throw classifyPostgresError(err, undefined, 'the platform restore', current.object);
  } finally {
    heartbeats.stop();
    await maintenance.end();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Fingerprints a restored cluster as the dump was fingerprinted: every organization of the platform
 * database, and every table outside them in every database the part holds.
 */
export async function fingerprintPlatformPostgresTarget(
  deps: Pick<PostgresPlatformDeps, 'model'>,
  input: { targetUrl: string; platformDatabase: string; databases: string[] },
): Promise<{ organizations: PlatformOrganization[]; platformObjects: PlatformPart['platformObjects'] }> {
  const organizations: PlatformOrganization[] = [];
  const platformObjects: PlatformPart['platformObjects'] = [];
  for (const database of input.databases) {
    const pool = createPostgresPool(databaseUrl(input.targetUrl, database), 2);
    pool.on('error', () => undefined);
    const client = await pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      if (database === input.platformDatabase) {
        for (const orgId of await listPostgresOrganizations(client, deps.model)) {
          const map = organizationDataMap(orgId, deps.model);
          organizations.push({
            orgId,
            objects: await fingerprintPostgres(pool, map, { rowHash: CURRENT_POSTGRES_ROW_HASH }),
          });
        }
        platformObjects.push(...(await fingerprintPostgresOutsideOrganizations(client, database, deps.model)));
      } else {
        platformObjects.push(
          ...(await fingerprintPostgresOutsideOrganizations(client, database, deps.model, {
            organizationsHere: false,
          })),
        );
      }
      await client.query('COMMIT');
    } finally {
      client.release();
      await pool.end();
    }
  }
  return { organizations, platformObjects };
}

/** Removes organizations (schemas, shared rows, organization row) from a restored target's platform database. Idempotent. */
export async function purgeOrganizationsFromTarget(
  deps: Pick<PostgresPlatformDeps, 'model'>,
  input: { targetUrl: string; platformDatabase: string; orgIds: string[] },
): Promise<{ removed: string[] }> {
  const pool = createPostgresPool(databaseUrl(input.targetUrl, input.platformDatabase), 1);
  pool.on('error', () => undefined);
  try {
    const removed: string[] = [];
    for (const orgId of input.orgIds) {
      const result = await clearOrganizationPostgres(pool, organizationDataMap(orgId, deps.model));
      if (result.schemas.length > 0 || result.rows > 0) removed.push(orgId);
    }
    return { removed };
  } finally {
    await pool.end();
  }
}

/** One page of organization ids (active or being deleted), sorted, after `afterId`. */
export async function listOrganizationsPage(
  deps: Pick<PostgresPlatformDeps, 'postgres' | 'model'>,
  afterId: string,
  limit: number,
): Promise<string[]> {
  const table = deps.model.postgres.sharedTables[0];
  if (!table) return [];
  const key = quotePgIdent(table.keyColumn);
  const result = await deps.postgres.query<{ id: string }>(
    `SELECT ${key} AS id FROM ${sharedTableSql(table)} WHERE ${key} > $1 AND status <> 'deleted' ORDER BY ${key} LIMIT $2`,
    [afterId, limit],
  );
  return result.rows.map((r) => r.id);
}

/**
 * Empties a scratch cluster a verification restored into: drops every database but the templates,
 * creates `postgres` again, and drops every role but the connecting superuser and the built-in ones.
 * Only for clusters a verification found empty at its start.
 */
export async function resetScratchPostgresCluster(
  targetUrl: string,
): Promise<{ databases: string[]; roles: string[] }> {
  const pool = createPostgresPool(databaseUrl(targetUrl, 'template1'), 1);
  pool.on('error', () => undefined);
  try {
    const dbs = await pool.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname NOT IN ('template0', 'template1') ORDER BY 1`,
    );
    const databases: string[] = [];
    for (const { datname } of dbs.rows) {
      await pool.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [datname],
      );
      await pool.query(`DROP DATABASE IF EXISTS ${quotePgIdent(datname)}`);
      databases.push(datname);
    }
    await pool.query('CREATE DATABASE postgres');
    const roleRows = await pool.query<{ rolname: string }>(
      'SELECT rolname FROM pg_roles WHERE rolname <> current_user ORDER BY 1',
    );
    const roles = roleRows.rows.map((r) => r.rolname).filter((r) => !BUILT_IN_ROLE.test(r));
    for (const role of roles) await pool.query(`DROP ROLE IF EXISTS ${quotePgIdent(role)}`);
    return { databases, roles };
  } finally {
    await pool.end();
  }
}
