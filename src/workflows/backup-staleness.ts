import { ApplicationFailure, upsertSearchAttributes } from '@temporalio/workflow';
import type { createStalenessActivities, StalenessReport } from '../activities/cross-store/staleness';
import { FailureType } from '../errors';
import { OperationAttribute } from '../search-attributes';
import { ACTIVITY_KINDS, activityProxies } from './shared/activity-proxies';

export interface BackupStalenessInput {
  /** An organization is stale when its newest verified backup is older than this, in milliseconds. @default 36 hours */
  staleAfterMs?: number;
}

const staleness = activityProxies<ReturnType<typeof createStalenessActivities>>(ACTIVITY_KINDS.quick);

/**
 * Reports every organization whose newest verified backup is older than `staleAfterMs` (or that
 * has none). Read-only; the CLI's `stale` and the SDK's `checkStaleness` run it.
 */
export async function backupStaleness(input: BackupStalenessInput = {}): Promise<StalenessReport> {
  if (input.staleAfterMs !== undefined && (!Number.isInteger(input.staleAfterMs) || input.staleAfterMs < 0)) {
    throw ApplicationFailure.nonRetryable(
      `staleAfterMs: expected a whole number of milliseconds >= 0, got ${JSON.stringify(input.staleAfterMs)}`,
      FailureType.InvalidInput,
    );
  }
  upsertSearchAttributes([{ key: OperationAttribute, value: 'preflight' }]);
  return staleness.checkBackupStaleness(input.staleAfterMs === undefined ? {} : { staleAfterMs: input.staleAfterMs });
}
