import { ApplicationFailure, executeChild, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { createStalenessActivities } from '../activities/cross-store/staleness';
import { FailureType } from '../errors';
import { OperationAttribute } from '../search-attributes';
import { ACTIVITY_KINDS, activityProxies } from './shared/activity-proxies';
import { rootMessage } from './shared/failures';

/** Workflow type of the verification workflow; by name, so the drill does not import its code. */
export const VERIFY_BACKUP_WORKFLOW = 'verifyBackup';

export interface RestoreDrillInput {
  /** Verifications running at once. @default 2 */
  concurrency?: number;
}

export interface RestoreDrillResult {
  verified: Array<{ orgId: string; backupId: string; workflowId: string }>;
  failed: Array<{ orgId: string; backupId: string; workflowId: string; error: string }>;
}

const drill = activityProxies<ReturnType<typeof createStalenessActivities>>(ACTIVITY_KINDS.quick);

/**
 * The runbook's weekly restore drill: runs `verifyBackup` on the newest complete backup of every
 * organization that has one, `concurrency` at a time. A failed verification is reported and fails
 * the drill at the end (so the schedule's run shows red), after every organization was tried.
 */
export async function restoreDrill(input: RestoreDrillInput = {}): Promise<RestoreDrillResult> {
  const concurrency = input.concurrency ?? 2;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw ApplicationFailure.nonRetryable(
      `concurrency: expected a whole number >= 1, got ${JSON.stringify(input.concurrency)}`,
      FailureType.InvalidInput,
    );
  }
  upsertSearchAttributes([{ key: OperationAttribute, value: 'verify' }]);
  const targets = await drill.listNewestCompleteBackups();
  const result: RestoreDrillResult = { verified: [], failed: [] };
  const parentId = workflowInfo().workflowId;
  const queue = [...targets];
  const runner = async (): Promise<void> => {
    for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
      const workflowId = `${parentId}-verify-${t.backupId}`;
      try {
        await executeChild(VERIFY_BACKUP_WORKFLOW, { workflowId, args: [{ backupId: t.backupId, orgId: t.orgId }] });
        result.verified.push({ ...t, workflowId });
      } catch (err) {
        result.failed.push({ ...t, workflowId, error: rootMessage(err) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, targets.length) }, runner));
  if (result.failed.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `restore drill: ${result.failed.length} of ${targets.length} verification(s) failed: ${result.failed.map((f) => `${f.orgId}/${f.backupId}: ${f.error}`).join('; ')}`,
      'RestoreDrillFailed',
      result,
    );
  }
  return result;
}
