import {
  ApplicationFailure,
  continueAsNew,
  executeChild,
  patched,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createStalenessActivities } from '../activities/cross-store/staleness';
import { FailureType } from '../errors';
import { OperationAttribute } from '../search-attributes';
import { ACTIVITY_KINDS, activityProxies } from './shared/activity-proxies';
import { DEFAULT_FAN_OUT_PAGE_SIZE, FAILURES_KEPT, forEachConcurrently, keepLastFailures } from './shared/fan-out';
import { rootMessage } from './shared/failures';

/** Workflow type of the verification workflow; by name, so the drill does not import its code. */
export const VERIFY_BACKUP_WORKFLOW = 'verifyBackup';

/** Marks the runs that page through the backups and continue as new after each page. */
export const RESTORE_DRILL_PAGES_PATCH = 'restore-drill-continues-as-new-per-page';

/** One verification that failed. */
export interface RestoreDrillFailure {
  orgId: string;
  backupId: string;
  workflowId: string;
  error: string;
}

export interface RestoreDrillInput {
  /** Verifications running at once. @default 2 */
  concurrency?: number;
  /** Organizations per run before the drill continues as new. @default 100 */
  pageSize?: number;
  /** Carried across continue-as-new; not for callers. */
  progress?: RestoreDrillResult & { afterOrgId: string };
}

/** Totals of the drill and its last failures: the same size for any number of organizations. */
export interface RestoreDrillResult {
  verified: number;
  failedCount: number;
  /** The last 20 failed verifications, oldest first. */
  failed: RestoreDrillFailure[];
}

const drill = activityProxies<ReturnType<typeof createStalenessActivities>>(ACTIVITY_KINDS.quick);

function wholeNumber(value: unknown, fallback: number, field: string): number {
  const n = value ?? fallback;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw ApplicationFailure.nonRetryable(
      `${field}: expected a whole number >= 1, got ${JSON.stringify(value)}`,
      FailureType.InvalidInput,
    );
  }
  return n;
}

/**
 * The runbook's weekly restore drill: runs `verifyBackup` on the newest complete backup of every
 * organization that has one, `concurrency` at a time, a page of `pageSize` organizations per run
 * (continuing as new in between, so the history stays small). A failed verification is reported
 * and fails the drill at the end (so the schedule's run shows red), after every organization was tried.
 */
export async function restoreDrill(input: RestoreDrillInput = {}): Promise<RestoreDrillResult> {
  const concurrency = wholeNumber(input.concurrency, 2, 'concurrency');
  const pageSize = wholeNumber(input.pageSize, DEFAULT_FAN_OUT_PAGE_SIZE, 'pageSize');
  upsertSearchAttributes([{ key: OperationAttribute, value: 'verify' }]);
  const paged = patched(RESTORE_DRILL_PAGES_PATCH);
  const afterOrgId = input.progress?.afterOrgId ?? '';
  // Runs started before the drill paged listed every organization at once; they replay that way.
  const targets = paged
    ? await drill.listNewestCompleteBackupsPage({ afterOrgId, limit: pageSize })
    : await drill.listNewestCompleteBackups();
  const result: RestoreDrillResult = {
    verified: input.progress?.verified ?? 0,
    failedCount: input.progress?.failedCount ?? 0,
    failed: (input.progress?.failed ?? []).slice(-FAILURES_KEPT),
  };
  const parentId = workflowInfo().workflowId;
  await forEachConcurrently(targets, concurrency, async (t) => {
    const workflowId = `${parentId}-verify-${t.backupId}`;
    try {
      await executeChild(VERIFY_BACKUP_WORKFLOW, { workflowId, args: [{ backupId: t.backupId, orgId: t.orgId }] });
      result.verified++;
    } catch (err) {
      result.failedCount++;
      keepLastFailures(result.failed, { ...t, workflowId, error: rootMessage(err) });
    }
  });
  const last = targets[targets.length - 1];
  if (paged && targets.length === pageSize && last !== undefined) {
    await continueAsNew<typeof restoreDrill>({ ...input, progress: { ...result, afterOrgId: last.orgId } });
  }
  if (result.failedCount > 0) {
    throw ApplicationFailure.nonRetryable(
      `restore drill: ${result.failedCount} of ${result.verified + result.failedCount} verification(s) failed${result.failedCount > result.failed.length ? ` (the last ${result.failed.length} named)` : ''}: ${result.failed.map((f) => `${f.orgId}/${f.backupId}: ${f.error}`).join('; ')}`,
      'RestoreDrillFailed',
      result,
    );
  }
  return result;
}
