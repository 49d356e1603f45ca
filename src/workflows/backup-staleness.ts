import { ApplicationFailure, proxyActivities, upsertSearchAttributes } from '@temporalio/workflow';
import type { createStalenessActivities, StalenessReport } from '../activities/cross-store/staleness';
import { FailureType, NON_RETRYABLE_FAILURE_TYPES } from '../errors';
import { OperationAttribute } from '../search-attributes';

export interface BackupStalenessInput {
  /** An organization is stale when its newest verified backup is older than this, in milliseconds. @default 36 hours */
  staleAfterMs?: number;
}

const staleness = proxyActivities<ReturnType<typeof createStalenessActivities>>({
  startToCloseTimeout: '10m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10, nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES] },
});

/**
 * Reports every organization whose newest verified backup is older than `staleAfterMs` (or that
 * has none). Read-only; the CLI's `stale` and the SDK's `checkStaleness` run it.
 */
export async function backupStaleness(input: BackupStalenessInput = {}): Promise<StalenessReport> {
  if (input.staleAfterMs !== undefined && (!Number.isInteger(input.staleAfterMs) || input.staleAfterMs < 0)) {
    throw ApplicationFailure.nonRetryable(`staleAfterMs: expected a whole number of milliseconds >= 0, got ${JSON.stringify(input.staleAfterMs)}`, FailureType.InvalidInput);
  }
  upsertSearchAttributes([{ key: OperationAttribute, value: 'preflight' }]);
  return staleness.checkBackupStaleness(input.staleAfterMs === undefined ? {} : { staleAfterMs: input.staleAfterMs });
}
