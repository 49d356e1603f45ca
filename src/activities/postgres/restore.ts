import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { BackupManifest, ManifestArtifact } from '../../contracts/backup';
import { FailureType, messageOf, permanentFailure } from '../../errors';
import { organizationDataMap, type OrganizationDataMap, type PlatformModel } from '../../platform/data-map';
import { listOrgSchemas } from '../../platform/discovery';
import { ensurePlatformSchema, sharedTableSql } from '../../platform/platform-schema';
import { postgresCatalogSchema, type PostgresCatalog } from '../../platform/postgres-privileges';
import { quotePgIdent } from '../../platform/quoting';
import type { BackupStore } from '../../storage/backup-store';
import { databaseUrl, type StoreClients } from '../../store-clients';
import { readManifest } from '../storage/manifest';
import { startHeartbeats } from '../support/heartbeats';
import { withArchiveRestoreList } from './archive-toc';
import { CATALOG_ARTIFACT, SCHEMAS_ARTIFACT } from './backup';
import { assertNoOutsideDependents } from './boundary';
import { classifyPostgresError } from './errors';
import { applyPrivileges, checkRoles, type RoleMapping } from './privileges';
import { clearOrganizationPostgres } from './purge';
import { hasPostgresAside } from './aside';
import { sharedTableExists } from './organization-row';
import { inTransaction } from '../../platform/pg-transaction';
import { createScratchDatabase, dropScratchDatabase, SCRATCH_DATABASE_PREFIX } from './scratch';
import { pgToolInvocation } from './tool-environment';
import { pgTool, runToolFrom } from './tools';

export interface PostgresRestoreDeps {
  postgres: Pool;
  /** Pools on the scratch and clone databases a restore creates; see {@link StoreClients.openPostgresDatabase}. */
  openPostgresDatabase: StoreClients['openPostgresDatabase'];
  postgresUrl: string;
  binDir: string;
  /** `pg_restore --jobs` for restores into a scratch database. */
  restoreJobs: number;
  store: BackupStore;
  model: PlatformModel;
}

export interface RestorePostgresInput {
  /** The organization the backup is of. */
  orgId: string;
  backupId: string;
  /** The organization to restore as; a different id makes a clone. */
  targetOrgId: string;
  /** Restore into this scratch database (created if missing) instead of the platform database. */
  scratchDatabase?: string;
  /** Roles of the backup to restore under other names (`{"app": "app_eu"}`); see privileges.ts. */
  roleMapping?: RoleMapping;
  /**
   * The target's schemas were set aside under this prefix (aside.ts `setPostgresAside`): the target
   * is not cleared (its shared rows stay until the loading transaction replaces them, delete and
   * insert together), only schemas of the organization left by an earlier attempt are dropped.
   */
  asidePrefix?: string;
}

export interface RestorePostgresResult {
  database: string;
  schemas: string[];
  sharedRows: Record<string, number>;
}

/**
 * Restores the PostgreSQL part of a backup as `targetOrgId` into the platform database or a scratch
 * database. The target's existing PostgreSQL data for `targetOrgId` is removed first, so a retried
 * attempt starts clean — the workflow decides beforehand that the target may be overwritten.
 * Schemas go through `pg_restore` (the trusted tool); for a clone they are restored into a temporary
 * database, renamed there, and moved with `pg_dump | pg_restore`, so the live source is never touched.
 * Shared rows are loaded in one transaction, parents first, with the key column set to the target id.
 */
export async function restorePostgres(
  deps: PostgresRestoreDeps,
  input: RestorePostgresInput,
): Promise<RestorePostgresResult> {
  const ctx = Context.current();
  const source = organizationDataMap(input.orgId, deps.model);
  const target = organizationDataMap(input.targetOrgId, deps.model);
  const manifest = await readManifest(deps.store, input.orgId, input.backupId);
  const database = input.scratchDatabase ?? new URL(deps.postgresUrl).pathname.slice(1);
  const targetUrl = input.scratchDatabase ? databaseUrl(deps.postgresUrl, input.scratchDatabase) : deps.postgresUrl;
  const step = { current: 'starting' };
  const heartbeats = startHeartbeats(() => ({ step: step.current }));
  let scratchPool: Pool | undefined;
  let cloneDatabase: string | undefined;
  try {
    if (input.scratchDatabase) {
      await createScratchDatabase(deps.postgres, input.scratchDatabase);
      scratchPool = deps.openPostgresDatabase(input.scratchDatabase, 2);
      await ensurePlatformSchema(scratchPool);
    }
    const targetPool = scratchPool ?? deps.postgres;
    // Everything that could refuse the restore is checked before the target is touched.
    step.current = 'checking the archive, roles and extensions';
    const checked = await checkPostgresRestore(deps, input, manifest);
    if (input.asidePrefix !== undefined) {
      step.current = 'dropping what an earlier attempt loaded';
      await dropPartialLoad(targetPool, target, input.asidePrefix);
    } else {
      step.current = 'clearing the target';
      await clearOrganizationPostgres(targetPool, target);
    }

    let schemas: string[] = [];
    if (checked) {
      const { dump } = checked;
      if (input.targetOrgId === input.orgId) {
        // A scratch database (verification) restores with --jobs: the workflow drops it whole on failure.
        step.current = input.scratchDatabase ? 'pg_restore of the schemas, in parallel' : 'pg_restore of the schemas';
        await restoreArchiveInto(deps, input, checked, targetUrl, targetPool, !input.scratchDatabase, {
          parallel: input.scratchDatabase !== undefined,
        });
      } else {
        // A clone: the archive names the source's schemas, so rename them in a database of their own.
        step.current = 'pg_restore into a temporary database for renaming';
        cloneDatabase = `${SCRATCH_DATABASE_PREFIX}clone_${ctx.info.activityId
          .replace(/[^a-z0-9]/gi, '')
          .toLowerCase()
          .slice(0, 12)}_${Date.now().toString(36)}`;
        await createScratchDatabase(deps.postgres, cloneDatabase);
        const cloneUrl = databaseUrl(deps.postgresUrl, cloneDatabase);
        const clonePool = deps.openPostgresDatabase(cloneDatabase, 1);
        const renamedSchemas: string[] = [];
        try {
          await restoreArchiveInto(deps, input, checked, cloneUrl, clonePool, false);
          for (const schema of await listOrgSchemas(clonePool, source)) {
            const renamed = target.postgres.mainSchema + schema.slice(source.postgres.mainSchema.length);
            await clonePool.query(`ALTER SCHEMA ${quotePgIdent(schema)} RENAME TO ${quotePgIdent(renamed)}`);
            renamedSchemas.push(renamed);
          }
        } finally {
          await clonePool.end();
        }
        step.current = 'moving the renamed schemas into the target';
        // Our own archive of the renamed schemas, owners and privileges included (their roles exist:
        // they were checked and applied in the clone database).
        const dumpArgs = ['--format=custom', `--dbname=${cloneUrl}`, ...renamedSchemas.map((n) => `--schema="${n}"`)];
        const dumpInvocation = pgToolInvocation(dumpArgs);
        const dumper = spawn(pgTool(deps.binDir, 'pg_dump'), dumpInvocation.args, {
          stdio: ['ignore', 'pipe', 'pipe'],
          signal: ctx.cancellationSignal,
          env: dumpInvocation.env,
        });
        let dumpErrors = '';
        dumper.stderr.on('data', (d: Buffer) => (dumpErrors += d.toString()));
        const dumped = new Promise<number | null>((resolve, reject) => {
          dumper.on('error', reject);
          dumper.on('close', resolve);
        });
        await runToolFrom(
          pgTool(deps.binDir, 'pg_restore'),
          ['--exit-on-error', '--single-transaction', `--dbname=${targetUrl}`],
          dumper.stdout,
          ctx.cancellationSignal,
          'pg_restore of the clone',
          { orgId: input.targetOrgId, object: dump.file },
        );
        if ((await dumped) !== 0) throw new Error(`pg_dump of the renamed clone failed: ${dumpErrors.trim()}`);
      }
      schemas = await listOrgSchemas(targetPool, target);
    }

    step.current = 'shared rows';
    const sharedRows = await loadSharedRows(deps, targetPool, input, manifest.artifacts, target, {
      replace: input.asidePrefix !== undefined,
    });
    return { database, schemas, sharedRows };
  } catch (err) {
    throw classifyPostgresError(err, input.targetOrgId, 'the restore');
  } finally {
    heartbeats.stop();
    await scratchPool?.end();
    if (cloneDatabase) await dropScratchDatabase(deps.postgres, cloneDatabase).catch(() => undefined);
  }
}

/** What {@link checkPostgresRestore} found: the archive, and the privileges to apply under mapped names. */
export interface CheckedPostgresRestore {
  dump: ManifestArtifact;
  /** Absent for backups made before privileges were data (their archives hold none). */
  catalog?: PostgresCatalog;
  mapRole: (role: string) => string;
}

/**
 * Checks, changing nothing, that a backup's PostgreSQL schemas can be restored as asked: the archive
 * holds only the organization's schemas (its table of contents), every role its privileges name
 * exists on the target after `roleMapping`, the extensions its tables use exist in the platform
 * database (a scratch or clone database gets them created), and no object outside the target
 * organization depends on the schemas a restore would drop.
 * @returns undefined when the backup has no schemas archive.
 * @throws non-retryable `RestoreRefused` / `InvalidInput` failures naming what to fix.
 */
export async function checkPostgresRestore(
  deps: PostgresRestoreDeps,
  input: RestorePostgresInput,
  manifest: BackupManifest,
): Promise<CheckedPostgresRestore | undefined> {
  const source = organizationDataMap(input.orgId, deps.model);
  const target = organizationDataMap(input.targetOrgId, deps.model);
  const dump = manifest.artifacts.find((a) => a.file === SCHEMAS_ARTIFACT);
  const mapping = input.roleMapping ?? {};
  const where = { orgId: input.orgId, backupId: input.backupId };
  const catalogArtifact = manifest.artifacts.find((a) => a.file === CATALOG_ARTIFACT);
  const catalog = catalogArtifact ? await readCatalog(deps.store, input, catalogArtifact) : undefined;
  if (!catalog && Object.keys(mapping).length > 0) {
    throw permanentFailure(
      FailureType.InvalidInput,
      `roleMapping: backup ${input.orgId}/${input.backupId} records no privileges (it predates them), so there is no role to map`,
      { store: 'postgres', orgId: input.orgId, object: 'roles' },
    );
  }
  if (!input.scratchDatabase) {
    // A replace drops the target's schemas: nothing outside the organization may hang on them.
    await assertNoOutsideDependents(deps.postgres, target, await listOrgSchemas(deps.postgres, target));
  }
  if (!dump) return undefined;
  const mapRole = catalog ? await checkRoles(deps.postgres, catalog, mapping, where) : (role: string) => role;
  if (catalog && !input.scratchDatabase) {
    // Installing an extension changes the whole database, not the organization: that is the operator's call.
    const present = await deps.postgres.query<{ extname: string }>(
      'SELECT extname FROM pg_catalog.pg_extension WHERE extname = ANY($1)',
      [catalog.extensions.map((e) => e.name)],
    );
    const missing = catalog.extensions.filter((e) => !present.rows.some((r) => r.extname === e.name));
    if (missing.length > 0) {
      throw permanentFailure(
        FailureType.RestoreRefused,
        `backup ${input.orgId}/${input.backupId} uses types of extensions the platform database does not have: ${missing
          .map((e) => `${e.name} (in schema ${e.schema}, version ${e.version})`)
          .join(', ')}; run CREATE EXTENSION for each first; nothing was changed`,
        { store: 'postgres', orgId: input.targetOrgId, object: missing.map((e) => e.name).join(',') },
      );
    }
  }
  await withArchiveRestoreList(
    pgTool(deps.binDir, 'pg_restore'),
    () => openArtifact(deps.store, input, dump),
    Context.current().cancellationSignal,
    {
      isOrgSchema: source.postgres.isOrgSchema,
      privilegesApart: catalog !== undefined,
      orgId: input.orgId,
      archive: dump.file,
    },
    async () => undefined,
  );
  return { dump, ...(catalog ? { catalog } : {}), mapRole };
}

async function readCatalog(
  store: BackupStore,
  input: RestorePostgresInput,
  artifact: ManifestArtifact,
): Promise<PostgresCatalog> {
  const chunks: Buffer[] = [];
  for await (const chunk of await openArtifact(store, input, artifact)) {
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  }
  const parsed = postgresCatalogSchema.safeParse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
  if (!parsed.success) {
    throw permanentFailure(
      FailureType.ChecksumMismatch,
      `${artifact.file} of backup ${input.orgId}/${input.backupId} is not a catalog this version reads: ${parsed.error.issues[0]?.message ?? ''}`,
      { store: 'postgres', orgId: input.orgId, object: artifact.file },
    );
  }
  return parsed.data;
}

/**
 * Restores the archive's organization schemas into one database: the extensions their tables use
 * (a scratch or clone database only), the schemas themselves, `pg_restore` of the filtered list with
 * `--no-owner --no-privileges`, then owners, ACLs, default privileges and policies from the catalog
 * under mapped role names.
 * @param platform whether `url` is the platform database, where extensions are never created.
 * @param options.parallel `pg_restore --jobs` from a temporary file (a scratch database only: no
 *   single transaction, so a failure leaves it half-restored and its caller drops it).
 */
async function restoreArchiveInto(
  deps: PostgresRestoreDeps,
  input: RestorePostgresInput,
  checked: CheckedPostgresRestore,
  url: string,
  pool: Pool,
  platform: boolean,
  options: { parallel?: boolean } = {},
): Promise<void> {
  const ctx = Context.current();
  const source = organizationDataMap(input.orgId, deps.model);
  const { dump, catalog } = checked;
  await withArchiveRestoreList(
    pgTool(deps.binDir, 'pg_restore'),
    () => openArtifact(deps.store, input, dump),
    ctx.cancellationSignal,
    {
      isOrgSchema: source.postgres.isOrgSchema,
      privilegesApart: catalog !== undefined,
      orgId: input.orgId,
      archive: dump.file,
    },
    async (list) => {
      if (!platform) {
        for (const e of catalog?.extensions ?? []) {
          await pool.query(`CREATE SCHEMA IF NOT EXISTS ${quotePgIdent(e.schema)}`);
          await pool.query(
            `CREATE EXTENSION IF NOT EXISTS ${quotePgIdent(e.name)} WITH SCHEMA ${quotePgIdent(e.schema)}`,
          );
        }
      }
      // The SCHEMA entries are not restored (their line cannot be told apart from a schema with a
      // space in its name): the schemas are made here, their owner, ACL and comment come from the catalog.
      for (const schema of list.schemas) await pool.query(`CREATE SCHEMA ${quotePgIdent(schema)}`);
      const args = [
        '--no-owner',
        '--no-privileges',
        '--exit-on-error',
        `--use-list=${list.listFile}`,
        ...list.schemaArgs,
      ];
      if (!options.parallel) {
        await runToolFrom(
          pgTool(deps.binDir, 'pg_restore'),
          [...args, '--single-transaction', `--dbname=${url}`],
          await openArtifact(deps.store, input, dump),
          ctx.cancellationSignal,
          'pg_restore',
          { orgId: input.targetOrgId, object: dump.file },
        );
        return;
      }
      // Parallel mode needs a seekable file and cannot have --single-transaction: tables load in
      // parallel, then indexes and constraints are built after the data (pg_restore's section order).
      const dir = await mkdtemp(path.join(os.tmpdir(), 'eloquent-pg-restore-'));
      try {
        const file = path.join(dir, 'schemas.dump');
        await deps.store.copyArtifactToFile(
          { orgId: input.orgId, backupId: input.backupId, path: dump.file },
          file,
          ctx.cancellationSignal,
        );
        await runToolFrom(
          pgTool(deps.binDir, 'pg_restore'),
          [...args, `--jobs=${deps.restoreJobs}`, `--dbname=${url}`, file],
          undefined,
          ctx.cancellationSignal,
          'pg_restore',
          { orgId: input.targetOrgId, object: dump.file },
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
  if (catalog) {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await applyPrivileges(client, catalog, checked.mapRole);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }
}

async function openArtifact(
  store: BackupStore,
  input: RestorePostgresInput,
  artifact: ManifestArtifact,
): Promise<Readable> {
  return store.openArtifactReader({ orgId: input.orgId, backupId: input.backupId, path: artifact.file });
}

/**
 * Drops the organization's schemas a failed attempt of a swap-mode restore left (its privileges are
 * applied after `pg_restore`'s transaction), in one transaction. Refuses when no schemas are
 * recorded as set aside under `prefix` but the organization has some: those would be the original.
 */
async function dropPartialLoad(pool: Pool, target: OrganizationDataMap, prefix: string): Promise<void> {
  await inTransaction(pool, async (client) => {
    const schemas = await listOrgSchemas(client, target);
    if (schemas.length === 0) return;
    if (!(await hasPostgresAside(client, prefix))) {
      throw permanentFailure(
        FailureType.RestoreRefused,
        `organization ${target.orgId} still has its schemas ${schemas.join(', ')} but none are set aside under ${prefix}; nothing was dropped`,
        { store: 'postgres', orgId: target.orgId, object: schemas.join(',') },
      );
    }
    await assertNoOutsideDependents(client, target, schemas);
    for (const schema of schemas) await client.query(`DROP SCHEMA ${quotePgIdent(schema)} CASCADE`);
  });
}

/**
 * Loads every shared-table artifact in one transaction, parents first, re-keyed to the target id.
 * With `options.replace` the organization's rows are deleted first in the same transaction
 * (children first), so a failed load leaves the rows as they were.
 */
async function loadSharedRows(
  deps: PostgresRestoreDeps,
  db: Pool,
  input: RestorePostgresInput,
  artifacts: ManifestArtifact[],
  target: OrganizationDataMap,
  options: { replace: boolean },
): Promise<Record<string, number>> {
  const client = await db.connect();
  const counts: Record<string, number> = {};
  try {
    await client.query('BEGIN');
    if (options.replace) {
      for (const table of [...target.postgres.sharedTables].reverse()) {
        if (!(await sharedTableExists(client, table))) continue;
        await client.query(`DELETE FROM ${sharedTableSql(table)} WHERE ${quotePgIdent(table.keyColumn)} = $1`, [
          target.orgId,
        ]);
      }
    }
    for (const table of target.postgres.sharedTables) {
      const object = `shared:${table.schema}.${table.table}`;
      const artifact = artifacts.find((a) => a.object === object);
      if (!artifact) continue;
      const columns = artifact.columns ?? [];
      if (!columns.includes(table.keyColumn)) {
        throw permanentFailure(
          FailureType.ChecksumMismatch,
          `artifact ${artifact.file} has no key column ${table.keyColumn}`,
          { store: 'postgres', orgId: input.orgId, object },
        );
      }
      const staging = quotePgIdent(`restore_${table.table}`);
      const columnList = columns.map(quotePgIdent).join(', ');
      await client.query(`CREATE TEMP TABLE ${staging} (LIKE ${sharedTableSql(table)}) ON COMMIT DROP`);
      const copy = client.query(copyFrom(`COPY ${staging} (${columnList}) FROM STDIN`));
      await pipeline(
        await deps.store.openArtifactReader({ orgId: input.orgId, backupId: input.backupId, path: artifact.file }),
        copy,
        {
          signal: Context.current().cancellationSignal,
        },
      );
      // The key column carries the organization id: a clone gets the target's.
      await client.query(`UPDATE ${staging} SET ${quotePgIdent(table.keyColumn)} = $1`, [target.orgId]);
      const inserted = await client.query(
        `INSERT INTO ${sharedTableSql(table)} (${columnList}) SELECT ${columnList} FROM ${staging}`,
      );
      counts[object] = inserted.rowCount ?? 0;
      if (
        options.replace &&
        artifact.rows !== null &&
        artifact.rows !== undefined &&
        counts[object] !== artifact.rows
      ) {
        // Checked before COMMIT: a replace whose rows differ keeps the target's rows.
        throw new Error(`${object} got ${counts[object]} rows, the backup holds ${artifact.rows}`);
      }
    }
    await client.query('COMMIT');
    return counts;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw new Error(
      `loading shared rows of ${input.orgId}/${input.backupId} as ${target.orgId} failed: ${messageOf(err)}`,
      { cause: err },
    );
  } finally {
    client.release();
  }
}
