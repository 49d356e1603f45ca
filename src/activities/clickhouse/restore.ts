import { finished } from 'node:stream/promises';
import type { ClickHouseClient } from '@clickhouse/client';
import { Context } from '@temporalio/activity';
import { FailureType, permanentFailure } from '../../errors';
import { organizationDataMap, type PlatformModel } from '../../platform/data-map';
import { quoteClickHouseIdent, quoteClickHouseQualified } from '../../platform/quoting';
import type { BackupStore } from '../../storage/backup-store';
import { classifyClickHouseError, isRetryableClickHouseError } from './errors';
import { startHeartbeats } from '../support/heartbeats';
import { readManifest } from '../storage/manifest';

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

/** Scratch ClickHouse databases this project creates; only these names are ever dropped as scratch. */
export const CLICKHOUSE_SCRATCH_PREFIX = 'eloquent_scratch_';

/**
 * Rewrites a `SHOW CREATE TABLE` statement of database `from` to create the table in `to`. Only
 * whole qualified names `from.` (bare or back-quoted) are replaced, so `org_ab.` never matches
 * inside `org_abc.`; a view's references to tables of the same database move with it.
 */
export function retargetCreateStatement(statement: string, from: string, to: string): string {
  const escaped = from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`(?<![A-Za-z0-9_\`])(?:\`${escaped}\`|${escaped})\\.`, 'g');
  const rewritten = statement.replace(pattern, `${quoteClickHouseIdent(to)}.`);
  if (rewritten === statement) throw new Error(`CREATE statement does not name database ${from}: ${statement.slice(0, 120)}`);
  return rewritten;
}

/** Drops a database; dropping one that is gone succeeds. */
export async function dropClickHouseDatabase(client: ClickHouseClient, database: string): Promise<void> {
  await client.command({ query: `DROP DATABASE IF EXISTS ${quoteClickHouseIdent(database)}` });
}

/**
 * Restores the ClickHouse part of a backup: the target database is (re)created empty — the workflow
 * has decided it may be — then every table from its CREATE statement, then its data streamed in
 * `Native` format. A table the server cannot create fails non-retryable, naming it.
 */
export async function restoreClickHouse(deps: ClickHouseRestoreDeps, input: RestoreClickHouseInput): Promise<{ database: string; tables: number; rows: number }> {
  const ctx = Context.current();
  const source = organizationDataMap(input.orgId, deps.model);
  const database = input.scratchDatabase ?? organizationDataMap(input.targetOrgId, deps.model).clickhouse.database;
  const manifest = await readManifest(deps.store, input.orgId, input.backupId);
  const ddl = manifest.artifacts.filter((a) => a.store === 'clickhouse' && a.object.startsWith('clickhouse-ddl:'));
  const data = manifest.artifacts.filter((a) => a.store === 'clickhouse' && a.object.startsWith('clickhouse:'));
  const current = { table: '' };
  const heartbeats = startHeartbeats(() => current);
  try {
    if (ddl.length === 0) return { database, tables: 0, rows: 0 };
    await dropClickHouseDatabase(deps.clickhouse, database);
    await deps.clickhouse.command({ query: `CREATE DATABASE ${quoteClickHouseIdent(database)}` });
    for (const artifact of ddl) {
      current.table = artifact.object;
      const chunks: Buffer[] = [];
      for await (const chunk of await deps.store.openArtifactReader({ orgId: input.orgId, backupId: input.backupId, path: artifact.file })) chunks.push(chunk as Buffer);
      const statement = retargetCreateStatement(Buffer.concat(chunks).toString('utf8').trim(), source.clickhouse.database, database);
      try {
        await deps.clickhouse.command({ query: statement });
      } catch (err) {
        // A dropped connection is retried like anywhere else; only the server's refusal is final.
        if (isRetryableClickHouseError(err)) throw err;
        throw permanentFailure(FailureType.StoreRejected, `cannot create table ${artifact.object.slice('clickhouse-ddl:'.length)}: ${err instanceof Error ? err.message : String(err)}`, {
          store: 'clickhouse',
          orgId: input.targetOrgId,
          object: artifact.file,
        });
      }
    }
    let rows = 0;
    for (const artifact of data) {
      const table = artifact.object.slice('clickhouse:'.length);
      current.table = table;
      const values = await deps.store.openArtifactReader({ orgId: input.orgId, backupId: input.backupId, path: artifact.file });
      const { stream } = await deps.clickhouse.exec({ query: `INSERT INTO ${quoteClickHouseQualified(database, table)} FORMAT Native`, values, abort_signal: ctx.cancellationSignal });
      // The answer to an INSERT is empty, but it must be read to free the connection.
      stream.resume();
      await finished(stream);
      rows += artifact.rows ?? 0;
    }
    return { database, tables: ddl.length, rows };
  } catch (err) {
    throw classifyClickHouseError(err, input.targetOrgId, current.table || database);
  } finally {
    heartbeats.stop();
  }
}
