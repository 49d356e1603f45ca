// How a deletion ends before the point of no return: cancelled by an operator, or failed. Either
// way every compensation runs, in reverse, and the organization is as it was (sessions aside).
import { ApplicationFailure, isCancellation, upsertMemo } from '@temporalio/workflow';
import type { DeleteOrganizationResult } from '../../contracts/deletion';
import { describeCompensations } from '../shared/compensations';
import { rootFailureType, rootMessage } from '../shared/failures';
import { DeletionCancelled } from './prepare';
import type { DeletionRun } from './state';

/** Undoes what the run changed; returns the `cancelled` result, or throws the failure naming the step. */
export async function undoBeforePointOfNoReturn(run: DeletionRun, err: unknown): Promise<DeleteOrganizationResult> {
  const { input, status } = run;
  const { orgId } = input;
  const cancelRequest = run.cancelRequest;
  if (err instanceof DeletionCancelled && cancelRequest) {
    const undone = describeCompensations(await run.compensations.runAll());
    status.cancelled = cancelRequest;
    run.moveTo('cancelled', `by ${cancelRequest.by}: ${cancelRequest.reason}`);
    upsertMemo({ deletion: `cancelled by ${cancelRequest.by}: ${cancelRequest.reason}` });
    status.notes.push(`compensations: ${undone.join('; ') || 'none needed'}; sessions stay revoked`);
    return {
      outcome: 'cancelled',
      orgId,
      cancelled: cancelRequest,
      restoredStatus: status.previousStatus ?? 'unknown',
      ...(status.backupId ? { backupId: status.backupId } : {}),
      sessionsRevoked: run.sessionsRevoked,
    };
  }
  const failedStep = status.step;
  const undone = describeCompensations(await run.compensations.runAll());
  const message = rootMessage(err);
  status.failure = { step: failedStep, message, compensations: undone };
  run.moveTo('failed', `at ${failedStep}: ${message}`);
  if (isCancellation(err)) throw err;
  throw ApplicationFailure.create({
    type: rootFailureType(err) ?? 'DeletionFailed',
    nonRetryable: true,
    message:
      `deletion of organization ${JSON.stringify(orgId)} stopped at step ${failedStep} before the point of no return: ${message}` +
      (undone.length > 0 ? `; compensated: ${undone.join('; ')}` : '') +
      '; no data was deleted',
    cause: err instanceof Error ? err : undefined,
  });
}
