// What the three Kubernetes workflows share: activity proxies with their timeouts, the progress
// query, input refusal and failure unwrapping. Workflow code: deterministic, types-only imports.
import {
  ActivityFailure,
  ApplicationFailure,
  defineQuery,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { KubernetesActivities } from '../activities/kubernetes';
import type { InputProblems } from '../contracts/kubernetes';
import { FailureType } from '../errors';
import { OperationAttribute } from '../search-attributes';
import { activityProxies } from './shared/activity-proxies';
import { trackProgress } from './shared/progress';

const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '15s', maximumAttempts: 6 } as const;

/** Single API calls: reads, plans, one patch, one create. */
export const kubernetesApi = activityProxies<KubernetesActivities>({ startToCloseTimeout: '1m', retry });

/**
 * Waits for rollouts and backups; they heartbeat every poll, so a lost worker is noticed within
 * the heartbeat timeout and the wait resumes elsewhere (the state lives in the cluster).
 */
export const kubernetesWaits = activityProxies<KubernetesActivities>({ startToCloseTimeout: '30m', heartbeatTimeout: '30s', retry });
export const veleroWaits = activityProxies<KubernetesActivities>({ startToCloseTimeout: '12h', heartbeatTimeout: '1m', retry });

/** The helm binary: few attempts, since a failed rollback is reported rather than repeated. */
export const helmCommands = activityProxies<KubernetesActivities>({
  startToCloseTimeout: '10m',
  heartbeatTimeout: '1m',
  retry: { ...retry, maximumAttempts: 3 },
});

export interface KubernetesProgress {
  /** What the workflow is doing now, e.g. "waiting for the rollout of eloquent/api". */
  step: string;
  /** Steps done so far, oldest first. */
  done: string[];
}

/** Every run answers `progress` with its current step. */
export const progressQuery = defineQuery<KubernetesProgress>('progress');

/** Registers the progress query and tags the run; returns the function that moves to a step. */
export function startOperation(): (step: string) => void {
  const progress: KubernetesProgress = { step: 'validating input', done: [] };
  setHandler(progressQuery, () => progress);
  if (workflowInfo().typedSearchAttributes.get(OperationAttribute) === undefined) {
    upsertSearchAttributes([{ key: OperationAttribute, value: 'kubernetes' }]);
  }
  const moveTo = trackProgress(progress, workflowInfo().workflowType);
  return (step: string) => {
    progress.done.push(progress.step);
    moveTo(step);
  };
}

/** Fails the run, non-retryable, with every input problem, each naming its field. */
export function refuseInvalidInput(workflow: string, problems: InputProblems): void {
  if (problems.length > 0) {
    throw ApplicationFailure.nonRetryable(`${workflow}: invalid input: ${problems.join('; ')}`, FailureType.InvalidInput);
  }
}

/**
 * Runs an activity call and, when it fails with the activity's own failure, rethrows that failure
 * so the run fails with the activity's message (naming namespace and object), not "activity failed".
 */
export async function step<T>(call: Promise<T>): Promise<T> {
  try {
    return await call;
  } catch (err) {
    if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) throw err.cause;
    throw err;
  }
}
