import { ApplicationFailure } from '@temporalio/workflow';
import {
  KubernetesFailureType,
  validateRollbackDeploymentInput,
  type RollbackDeploymentInput,
  type RollbackDeploymentReport,
} from '../contracts/kubernetes';
import { kubernetesApi, kubernetesWaits, refuseInvalidInput, startOperation, step } from './kubernetes-steps';

/**
 * The runbook's `kubectl rollout undo deployment/<service> [--to-revision=N]`: puts the pod template
 * of the chosen revision (default: the previous one) back on the Deployment and waits until the
 * rollout completes or passes its progress deadline. If it fails, the template it started from is
 * put back (unless `rollForwardOnFailure` is false) and the run fails with the reason.
 * An unknown Deployment or revision is refused before anything is patched.
 */
export async function rollbackDeployment(input: RollbackDeploymentInput): Promise<RollbackDeploymentReport> {
  const moveTo = startOperation();
  refuseInvalidInput('rollbackDeployment', validateRollbackDeploymentInput(input));

  moveTo(`planning the rollback of deployment ${input.service}`);
  const plan = await step(
    kubernetesApi.planDeploymentRollback({
      service: input.service,
      namespace: input.namespace,
      toRevision: input.toRevision,
    }),
  );
  const deployment = { service: plan.service, namespace: plan.namespace };
  const object = `deployment ${plan.namespace}/${plan.service}`;
  const report = {
    namespace: plan.namespace,
    service: plan.service,
    fromRevision: plan.fromRevision,
    fromImages: plan.fromImages,
    toRevision: plan.toRevision,
    toImages: plan.toImages,
  };
  if (plan.alreadyAtTarget) return { ...report, revisionAfter: plan.fromRevision, changed: false };

  moveTo(`rolling ${object} back from revision ${plan.fromRevision} to ${plan.toRevision}`);
  await step(kubernetesApi.applyDeploymentRevision({ ...deployment, revision: plan.toRevision }));
  moveTo(`waiting for the rollout of ${object}`);
  const rollout = await step(kubernetesWaits.waitForDeploymentRollout(deployment));
  if (rollout.outcome === 'complete') return { ...report, revisionAfter: rollout.revision, changed: true };

  let aftermath = `; ${object} was left at revision ${plan.toRevision}'s template (rollForwardOnFailure is off)`;
  if (input.rollForwardOnFailure ?? true) {
    moveTo(`rolling ${object} forward again to revision ${plan.fromRevision}`);
    await step(kubernetesApi.applyDeploymentRevision({ ...deployment, revision: plan.fromRevision }));
    const forward = await step(kubernetesWaits.waitForDeploymentRollout(deployment));
    aftermath =
      forward.outcome === 'complete'
        ? `; rolled forward again to the template of revision ${plan.fromRevision} (${plan.fromImages.join(', ')}), now revision ${forward.revision}`
        : `; rolling forward to revision ${plan.fromRevision} failed too: ${forward.message}`;
  }
  throw ApplicationFailure.nonRetryable(
    `[kubernetes object=${object}] rollback to revision ${plan.toRevision} (${plan.toImages.join(', ')}) failed: ${rollout.message}${aftermath}`,
    KubernetesFailureType.RolloutFailed,
  );
}
