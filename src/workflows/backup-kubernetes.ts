import { ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import {
  backupNameFor,
  KubernetesFailureType,
  validateBackupKubernetesInput,
  VELERO_NAMESPACE,
  type BackupKubernetesInput,
  type VeleroBackupResult,
} from '../contracts/kubernetes';
import { keepHelmValuesAfter } from './helm-values';
import { kubernetesApi, refuseInvalidInput, startOperation, step, veleroWaits } from './kubernetes-steps';

/**
 * The runbook's weekly cluster-state backup: creates a Velero `Backup` of the given namespaces
 * with the given retention, waits for Velero to finish it and reports its phase with the counts of
 * errors and warnings. Completed and PartiallyFailed return (check `warnings`/`errors`); Failed
 * and FailedValidation fail the run with Velero's reason.
 */
export async function backupKubernetes(input: BackupKubernetesInput = {}): Promise<VeleroBackupResult> {
  const moveTo = startOperation();
  refuseInvalidInput('backupKubernetes', validateBackupKubernetesInput(input));
  // Derived from the workflow id, so a retried or replayed run finds its own Backup again.
  const name = input.name ?? backupNameFor(workflowInfo().workflowId);

  moveTo(`creating Velero backup ${VELERO_NAMESPACE}/${name}`);
  await step(
    kubernetesApi.createVeleroBackup({
      name,
      includedNamespaces: input.includedNamespaces,
      ttl: input.ttl,
      storageLocation: input.storageLocation,
    }),
  );
  moveTo(`waiting for Velero backup ${VELERO_NAMESPACE}/${name}`);
  const result = await step(veleroWaits.waitForVeleroBackup({ name }));
  if (result.phase === 'Failed' || result.phase === 'FailedValidation') {
    const reason = result.failureReason ?? (result.validationErrors.join('; ') || 'no reason given');
    throw ApplicationFailure.nonRetryable(
      `[kubernetes object=backup ${VELERO_NAMESPACE}/${name}] Velero backup ended ${result.phase}: ${reason} (errors: ${result.errors}, warnings: ${result.warnings})`,
      KubernetesFailureType.BackupFailed,
    );
  }
  // The runbook keeps Helm values "always": at least weekly with the cluster state, besides after every rollback.
  moveTo('keeping the Helm values of the release');
  const helmValues = await keepHelmValuesAfter({});
  return { ...result, ...(helmValues ? { helmValues } : {}) };
}
