import { ApplicationFailure } from '@temporalio/workflow';
import {
  KubernetesFailureType,
  validateRollbackPlatformInput,
  type RollbackPlatformInput,
  type RollbackPlatformReport,
} from '../contracts/kubernetes';
import {
  helmCommands,
  kubernetesApi,
  kubernetesWaits,
  refuseInvalidInput,
  startOperation,
  step,
} from './kubernetes-steps';
import { keepHelmValuesAfter } from './helm-values';

/**
 * The runbook's `helm rollback eloquent <revision> -n eloquent`: checks the revision against
 * `helm history`, runs the real helm binary, then waits until every Deployment of the release has
 * completed its rollout, and reports `helm history` before and after. A release or revision that
 * does not exist is refused with nothing changed.
 */
export async function rollbackPlatform(input: RollbackPlatformInput): Promise<RollbackPlatformReport> {
  const moveTo = startOperation();
  refuseInvalidInput('rollbackPlatform', validateRollbackPlatformInput(input));

  moveTo(`reading helm history of ${input.release ?? 'the configured release'}`);
  const before = await step(kubernetesApi.helmHistory({ release: input.release, namespace: input.namespace }));
  const { release, namespace } = before;
  const current = before.revisions.at(-1);
  if (!current) {
    throw ApplicationFailure.nonRetryable(
      `[kubernetes object=helm release ${namespace}/${release}] has no revisions`,
      KubernetesFailureType.UnknownObject,
    );
  }

  moveTo(`helm rollback of ${namespace}/${release} from revision ${current.revision}`);
  const rollback = await step(
    helmCommands.helmRollback({
      release,
      namespace,
      revision: input.revision,
      expectedCurrentRevision: current.revision,
    }),
  );

  moveTo(`waiting for the Deployments of ${namespace}/${release}`);
  const services = await step(kubernetesApi.releaseDeployments({ release, namespace }));
  const deployments = await Promise.all(
    services.map((service) => step(kubernetesWaits.waitForDeploymentRollout({ service, namespace }))),
  );
  const after = await step(kubernetesApi.helmHistory({ release, namespace }));
  const helmValues = await keepHelmValuesAfter({ release, namespace });

  const failed = deployments.filter((d) => d.outcome === 'failed');
  if (failed.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `[kubernetes object=helm release ${namespace}/${release}] rolled back to revision ${rollback.toRevision} as revision ${rollback.newRevision}, ` +
        `but the rollout failed for ${failed.map((d) => `deployment ${d.service}: ${d.message}`).join('; ')}`,
      KubernetesFailureType.RolloutFailed,
    );
  }
  return {
    ...rollback,
    deployments,
    historyBefore: before.revisions,
    historyAfter: after.revisions,
    ...(helmValues ? { helmValues } : {}),
  };
}
