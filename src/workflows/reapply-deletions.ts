import { ApplicationFailure, executeChild, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { deletionWorkflowId, type ReapplyDeletionsInput, type ReapplyDeletionsResult } from '../contracts/deletion';
import { FailureType } from '../errors';
import { OperationAttribute } from '../search-attributes';
import { deleteOrganization } from './delete-organization';
import { ACTIVITY_KINDS, activityProxies } from './shared/activity-proxies';
import { rootMessage } from './shared/failures';

/** The reason every re-applied deletion records. */
export const REAPPLY_REASON = 'reapplying a recorded deletion';

const log = activityProxies(ACTIVITY_KINDS.deletionLog);

/**
 * After an operator restored a whole-platform dump by hand (`psql < full_backup.sql`) or an older
 * backup: deletes again every organization whose recorded deletion is in effect but which exists
 * again in some store — without a backup (reason recorded) and without a grace period. First
 * writes back the certificates the restore removed from `eloquent_ops`. The deletion log is read
 * from the backup store, which the restore did not touch.
 */
export async function reapplyDeletions(input: ReapplyDeletionsInput): Promise<ReapplyDeletionsResult> {
  if (
    input === null ||
    typeof input !== 'object' ||
    typeof input.requestedBy !== 'string' ||
    input.requestedBy.trim() === ''
  ) {
    throw ApplicationFailure.nonRetryable(
      'requestedBy: expected a non-empty string (it is recorded in every re-applied certificate)',
      FailureType.InvalidInput,
    );
  }
  const concurrency = input.concurrency ?? 2;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 16) {
    throw ApplicationFailure.nonRetryable(
      `concurrency: expected a whole number 1-16, got ${JSON.stringify(input.concurrency)}`,
      FailureType.InvalidInput,
    );
  }
  upsertSearchAttributes([{ key: OperationAttribute, value: 'delete' }]);
  const dryRun = input.dryRun ?? false;
  const resynced = dryRun ? { certificates: 0, overrides: 0 } : await log.resyncDeletionCertificates();
  const { logged, reappeared } = await log.findReappearedOrganizations();
  const result: ReapplyDeletionsResult = {
    logged,
    certificatesResynced: resynced.certificates,
    reapplied: reappeared.map((r) => ({ orgId: r.orgId, found: r.found, workflowId: deletionWorkflowId(r.orgId) })),
    dryRun,
  };
  if (dryRun) return result;

  const parent = workflowInfo().workflowId;
  let next = 0;
  const worker = async () => {
    while (next < reappeared.length) {
      const index = next++;
      const org = reappeared[index];
      const entry = result.reapplied[index];
      if (!org || !entry) continue;
      try {
        await executeChild(deleteOrganization, {
          workflowId: entry.workflowId,
          args: [
            {
              orgId: org.orgId,
              confirmOrgId: org.orgId,
              requestedBy: `${input.requestedBy.trim()} (via ${parent})`,
              reason: REAPPLY_REASON,
              skipBackup: true,
              gracePeriod: '0s',
              reapplyingDeletionRunId: org.deletionRunId,
            },
          ],
        });
        entry.result = 'deleted';
      } catch (err) {
        // One organization's failure must not keep the others alive; it is reported in the result.
        entry.result = 'failed';
        entry.error = rootMessage(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, reappeared.length) }, () => worker()));
  const failed = result.reapplied.filter((r) => r.result === 'failed');
  if (failed.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `reapplyDeletions: ${failed.length} of ${result.reapplied.length} organizations could not be deleted again: ${failed.map((f) => `${f.orgId}: ${f.error ?? '?'}`).join('; ')}`,
      'ReapplyFailed',
      result,
    );
  }
  return result;
}
