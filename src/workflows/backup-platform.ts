import {
  ApplicationFailure,
  continueAsNew,
  executeChild,
  patched,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import { BACKUP_STORES, type BackupStoreName } from '../contracts/backup';
import { FailureType } from '../errors';
import { parseOrgId } from '../platform/org-id';
import { OperationAttribute } from '../search-attributes';
import { backupOrganization } from './backup-organization';
import { platformPreflight } from './platform-preflight';
import { dumpWholePlatform, PLATFORM_DUMP_PATCH, type PlatformDumpSummary } from './platform-dump';
import { ACTIVITY_KINDS, activityProxies } from './shared/activity-proxies';
import { FAILURES_KEPT, keepLastFailures, type FanOutFailure } from './shared/fan-out';
import { rootMessage } from './shared/failures';

export interface BackupPlatformInput {
  reason?: string;
  stores?: BackupStoreName[];
  /** Organization backups running at once. @default 4 */
  concurrency?: number;
  /** Organizations per run before continuing as new, to keep histories small. @default 100 */
  pageSize?: number;
  /** Only these organizations (sorted, de-duplicated); every organization in PostgreSQL when absent. */
  orgIds?: string[];
  /**
   * Also dump every database of each store whole (platform-dump.ts), restorable with `restorePlatform`.
   * @default true, unless `orgIds` narrows the run to some organizations (then only the globals are written)
   */
  platformDump?: boolean;
  /** Verify each organization's backup. @default false (the weekly restore drill verifies) */
  verify?: boolean;
  /** Carried across continue-as-new; not for callers. */
  progress?: {
    platformBackupId: string;
    afterId: string;
    succeeded: number;
    /** The last {@link FAILURES_KEPT} failures, oldest first. */
    failed: FanOutFailure[];
    /** Every failure so far; absent in runs continued by code that carried the whole list. */
    failedCount?: number;
    platformDump?: PlatformDumpSummary;
  };
}

export interface BackupPlatformResult {
  platformBackupId: string;
  succeeded: number;
  /** The last {@link FAILURES_KEPT} failures, oldest first; `failedCount` counts them all. */
  failed: FanOutFailure[];
  failedCount: number;
  /** The whole-platform dump (every database of each store), absent in runs of older code. */
  platformDump?: PlatformDumpSummary;
}

const activities = activityProxies(ACTIVITY_KINDS.backupStore);

function positive(value: number | undefined, fallback: number, field: string): number {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n < 1)
    throw ApplicationFailure.nonRetryable(
      `${field}: expected a whole number >= 1, got ${JSON.stringify(value)}`,
      FailureType.InvalidInput,
    );
  return n;
}

/**
 * The whole platform: a dump of every database of each store (platform-dump.ts; globals only in runs
 * of older code), then a `backupOrganization` child per organization,
 * `concurrency` at a time. One organization's failure is reported, never stops the others. Continues
 * as new every `pageSize` organizations so the history stays small with thousands of them.
 */
export async function backupPlatform(input: BackupPlatformInput = {}): Promise<BackupPlatformResult> {
  const concurrency = positive(input.concurrency, 4, 'concurrency');
  const pageSize = positive(input.pageSize, 100, 'pageSize');
  const stores = input.stores ?? [...BACKUP_STORES];
  upsertSearchAttributes([{ key: OperationAttribute, value: 'backup' }]);
  let progress = input.progress;
  if (!progress) {
    await executeChild(platformPreflight, { workflowId: `${workflowInfo().workflowId}-preflight`, args: [{}] });
    const platformBackupId = `${new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z')}-${uuid4().slice(0, 8)}`;
    let platformDump: PlatformDumpSummary | undefined;
    if ((input.platformDump ?? input.orgIds === undefined) && patched(PLATFORM_DUMP_PATCH)) {
      platformDump = await dumpWholePlatform(
        platformBackupId,
        stores,
        input.reason ?? `platform backup ${platformBackupId}`,
        workflowInfo().workflowId,
      );
    } else if (stores.includes('postgres')) await activities.dumpPlatformGlobals({ backupId: platformBackupId });
    progress = {
      platformBackupId,
      afterId: '',
      succeeded: 0,
      failed: [],
      failedCount: 0,
      ...(platformDump ? { platformDump } : {}),
    };
  }
  // The summary stays the same size across continue-as-new: counts, and the last failures by name.
  progress = {
    ...progress,
    failedCount: progress.failedCount ?? progress.failed.length,
    failed: progress.failed.slice(-FAILURES_KEPT),
  };

  const afterId = progress.afterId;
  const page = input.orgIds
    ? [...new Set(input.orgIds.map((id) => parseOrgId(id, 'orgIds')))]
        .sort()
        .filter((id) => id > afterId)
        .slice(0, pageSize)
    : await activities.listOrganizationsPage({ afterId, limit: pageSize });
  const queue = [...page];
  const state = progress;
  const runner = async (): Promise<void> => {
    for (let orgId = queue.shift(); orgId !== undefined; orgId = queue.shift()) {
      try {
        await executeChild(backupOrganization, {
          workflowId: `backup-${orgId}-${state.platformBackupId}`,
          args: [
            {
              orgId,
              reason: input.reason ?? `platform backup ${state.platformBackupId}`,
              stores,
              verify: input.verify ?? false,
            },
          ],
        });
        state.succeeded++;
      } catch (err) {
        state.failedCount = (state.failedCount ?? 0) + 1;
        keepLastFailures(state.failed, { orgId, error: rootMessage(err) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, page.length) }, runner));

  const last = page[page.length - 1];
  if (page.length === pageSize && last !== undefined) {
    await continueAsNew<typeof backupPlatform>({ ...input, progress: { ...state, afterId: last } });
  }
  return {
    platformBackupId: state.platformBackupId,
    succeeded: state.succeeded,
    failed: state.failed,
    failedCount: state.failedCount ?? state.failed.length,
    ...(state.platformDump ? { platformDump: state.platformDump } : {}),
  };
}
