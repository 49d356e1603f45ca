import type { KubernetesActivityDeps } from './api';
import { createDeploymentActivities } from './deployments';
import { createHelmActivities } from './helm';
import { createVeleroActivities } from './velero';

export { loadKubeConfig, type KubernetesActivityDeps } from './api';
export { isRetryableKubernetesError } from './errors';

/**
 * The Kubernetes activities: Deployment history and rollback (the semantics of `kubectl rollout`),
 * Helm history and rollback (the `helm` binary, streamed into heartbeats) and Velero backups.
 * Every activity names its namespace and object in its failures; an unknown Deployment, revision,
 * release or Backup fails as non-retryable `UnknownKubernetesObject`, an unreachable API server
 * as retryable `StoreUnavailable`.
 */
export function createKubernetesActivities(deps: KubernetesActivityDeps) {
  return {
    ...createDeploymentActivities(deps),
    ...createHelmActivities(deps),
    ...createVeleroActivities(deps),
  };
}

export type KubernetesActivities = ReturnType<typeof createKubernetesActivities>;
