import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import type { ManifestArtifact } from '../../contracts/backup';
import type { PlatformModel } from '../../platform/data-map';
import { sharedTableSql } from '../../platform/platform-schema';
import { quotePgIdent } from '../../platform/quoting';
import type { BackupStore } from '../../storage/backup-store';
import { writeFromStream } from '../support/artifact-stream';
import { pgTool, runToolInto } from './tools';

/** Folder of whole-platform artifacts in the backup store; never a valid organization id. */
export const PLATFORM_BACKUP_ORG = '_platform';

export interface PostgresPlatformDeps {
  postgres: Pool;
  postgresUrl: string;
  binDir: string;
  store: BackupStore;
  model: PlatformModel;
}

/** Roles and tablespaces of the cluster (`pg_dumpall --globals-only`), which no per-organization dump holds. */
export async function dumpPlatformGlobals(deps: PostgresPlatformDeps, backupId: string): Promise<ManifestArtifact> {
  const ctx = Context.current();
  const file = 'postgres/globals.sql';
  const record = await writeFromStream(
    deps.store,
    { orgId: PLATFORM_BACKUP_ORG, backupId, path: file },
    { alreadyCompressed: false },
    (sink) =>
      runToolInto(
        pgTool(deps.binDir, 'pg_dumpall'),
        ['--globals-only', `--dbname=${deps.postgresUrl}`],
        sink,
        ctx.cancellationSignal,
        () => undefined,
        {
          orgId: PLATFORM_BACKUP_ORG,
          object: 'globals',
        },
      ),
  );
  await deps.store.writeJson({ orgId: PLATFORM_BACKUP_ORG, backupId }, 'manifest.json', {
    backupId,
    artifacts: [{ file, ...record }],
    writtenAt: new Date().toISOString(),
  });
  return { store: 'postgres', object: 'globals', file, ...record, rows: null };
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
