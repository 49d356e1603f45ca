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
import { ACTIVITY_KINDS, activityProxies } from './shared/activity-proxies';
import { trackProgress } from './shared/progress';

export const kubernetesApi = activityProxies<KubernetesActivities>(ACTIVITY_KINDS.kubernetesApi);
export const kubernetesWaits = activityProxies<KubernetesActivities>(ACTIVITY_KINDS.kubernetesWait);
export const veleroWaits = activityProxies<KubernetesActivities>(ACTIVITY_KINDS.veleroWait);
export const helmCommands = activityProxies<KubernetesActivities>(ACTIVITY_KINDS.helm);

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
    throw ApplicationFailure.nonRetryable(
      `${workflow}: invalid input: ${problems.join('; ')}`,
      FailureType.InvalidInput,
    );
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
