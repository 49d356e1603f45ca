// The activity options every data workflow shares. Workflow-safe: types and proxies only.
import { ActivityCancellationType, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { NON_RETRYABLE_FAILURE_TYPES } from '../errors';

/** Short steps (checks, listings, manifests, fingerprints): retried with backoff, permanent failures at once. */
export const quickActivities = proxyActivities<Activities>({
  startToCloseTimeout: '10m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10, nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES] },
});

/**
 * Dumps and restores: they stream for as long as the data takes and heartbeat every 2 s, so a dead
 * worker is noticed within 20 s and the retry resumes from the heartbeat details. On cancellation
 * the workflow waits until the activity has really stopped, so no cleanup or compensation runs
 * under a dump or restore that is still writing.
 */
export const streamingActivities = proxyActivities<Activities>({
  startToCloseTimeout: '6h',
  heartbeatTimeout: '20s',
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '2s', maximumInterval: '1m', maximumAttempts: 20, nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES] },
});
