import { spawn } from 'node:child_process';
import { pipeline } from 'node:stream/promises';
import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { ManifestArtifact } from '../../contracts/backup';
import { FailureType, messageOf, permanentFailure } from '../../errors';
import { organizationDataMap, type OrganizationDataMap, type PlatformModel } from '../../platform/data-map';
import { listOrgSchemas } from '../../platform/discovery';
import { ensurePlatformSchema, sharedTableSql } from '../../platform/platform-schema';
import { quotePgIdent } from '../../platform/quoting';
import type { BackupStore } from '../../storage/backup-store';
import { databaseUrl, type StoreClients } from '../../store-clients';
import { readManifest } from '../storage/manifest';
import { startHeartbeats } from '../support/heartbeats';
import { SCHEMAS_ARTIFACT } from './backup';
import { classifyPostgresError } from './errors';
import { clearOrganizationPostgres } from './purge';
import { createScratchDatabase, dropScratchDatabase, SCRATCH_DATABASE_PREFIX } from './scratch';
import { pgToolInvocation } from './tool-environment';
import { pgTool, runToolFrom } from './tools';

export interface PostgresRestoreDeps {
  postgres: Pool;
  /** Pools on the scratch and clone databases a restore creates; see {@link StoreClients.openPostgresDatabase}. */
  openPostgresDatabase: StoreClients['openPostgresDatabase'];
  postgresUrl: string;
  binDir: string;
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
    step.current = 'clearing the target';
    await clearOrganizationPostgres(targetPool, target);

    const dump = manifest.artifacts.find((a) => a.file === SCHEMAS_ARTIFACT);
    let schemas: string[] = [];
    if (dump) {
      const restoreArgs = ['--no-owner', '--no-privileges', '--exit-on-error', '--single-transaction'];
      if (input.targetOrgId === input.orgId) {
        step.current = 'pg_restore of the schemas';
        await runToolFrom(
          pgTool(deps.binDir, 'pg_restore'),
          [...restoreArgs, `--dbname=${targetUrl}`],
          await openArtifact(deps.store, input, dump),
          ctx.cancellationSignal,
          'pg_restore',
          { orgId: input.targetOrgId, object: dump.file },
        );
      } else {
        // A clone: the archive names the source's schemas, so rename them in a database of their own.
        step.current = 'pg_restore into a temporary database for renaming';
        cloneDatabase = `${SCRATCH_DATABASE_PREFIX}clone_${ctx.info.activityId
          .replace(/[^a-z0-9]/gi, '')
          .toLowerCase()
          .slice(0, 12)}_${Date.now().toString(36)}`;
        await createScratchDatabase(deps.postgres, cloneDatabase);
        const cloneUrl = databaseUrl(deps.postgresUrl, cloneDatabase);
        await runToolFrom(
          pgTool(deps.binDir, 'pg_restore'),
          [...restoreArgs, `--dbname=${cloneUrl}`],
          await openArtifact(deps.store, input, dump),
          ctx.cancellationSignal,
          'pg_restore',
          { orgId: input.targetOrgId, object: dump.file },
        );
        const clonePool = deps.openPostgresDatabase(cloneDatabase, 1);
        try {
          for (const schema of await listOrgSchemas(clonePool, source)) {
            const renamed = target.postgres.mainSchema + schema.slice(source.postgres.mainSchema.length);
            await clonePool.query(`ALTER SCHEMA ${quotePgIdent(schema)} RENAME TO ${quotePgIdent(renamed)}`);
          }
        } finally {
          await clonePool.end();
        }
        step.current = 'moving the renamed schemas into the target';
        const dumpArgs = ['--format=custom', '--no-owner', '--no-privileges', `--dbname=${cloneUrl}`];
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
          [...restoreArgs, `--dbname=${targetUrl}`],
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
    const sharedRows = await loadSharedRows(deps, targetPool, input, manifest.artifacts, target);
    return { database, schemas, sharedRows };
  } catch (err) {
    throw classifyPostgresError(err, input.targetOrgId, 'the restore');
  } finally {
    heartbeats.stop();
    await scratchPool?.end();
    if (cloneDatabase) await dropScratchDatabase(deps.postgres, cloneDatabase).catch(() => undefined);
  }
}

async function openArtifact(
  store: BackupStore,
  input: RestorePostgresInput,
  artifact: ManifestArtifact,
): Promise<NodeJS.ReadableStream> {
  return store.openArtifactReader({ orgId: input.orgId, backupId: input.backupId, path: artifact.file });
}

/** Loads every shared-table artifact in one transaction, parents first, re-keyed to the target id. */
async function loadSharedRows(
  deps: PostgresRestoreDeps,
  db: Pool,
  input: RestorePostgresInput,
  artifacts: ManifestArtifact[],
  target: OrganizationDataMap,
): Promise<Record<string, number>> {
  const client = await db.connect();
  const counts: Record<string, number> = {};
  try {
    await client.query('BEGIN');
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
