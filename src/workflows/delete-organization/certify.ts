// The deletion certificate: begun at the point of no return, recorded in the deletion log before
// the first purge and after the last, and recorded as abandoned if an operator ends the run.
import { ApplicationFailure, ParentClosePolicy, patched, startChild, upsertMemo } from '@temporalio/workflow';
import { PURGE_STEPS, type DeleteOrganizationResult, type DeletionCertificate } from '../../contracts/deletion';
import { untilDoneActivities, untilDoneAttempts, sagaStepActivities as quick } from '../shared/activity-proxies';
import { BASE_TIMEOUT_MS } from '../shared/scaled-timeouts';
import { rootMessage } from '../shared/failures';
import { shredOrganizationBackups } from '../shred-organization-backups';
import { DELETION_ABANDONED } from './definitions';
import { Abandoned, untilSucceeded } from './parking';
import type { DeletionRun, PurgingRun } from './state';

/** Runs recorded before it retry inside Temporal's retry policy, cut at `storeDownAfter` however healthy the call. */
export const RETRIES_IN_WORKFLOW_PATCH = 'deletion-retries-failures-in-workflow';

/** Passes the point of no return: from here a cancel is ignored and only `abandon` ends the run. */
export function passPointOfNoReturn(run: DeletionRun): PurgingRun {
  const { info, input, status } = run;
  run.pointOfNoReturn = true;
  const pointOfNoReturnAt = new Date().toISOString();
  status.pointOfNoReturnAt = pointOfNoReturnAt;
  if (run.cancelRequest)
    status.notes.push(
      `cancelDeletion by ${run.cancelRequest.by} at ${run.cancelRequest.at} came after the grace period ended; ignored`,
    );
  run.moveTo('purging');
  upsertMemo({ deletion: `purging since ${pointOfNoReturnAt}` });
  const certificate: DeletionCertificate = {
    formatVersion: 1,
    orgId: input.orgId,
    workflowId: info.workflowId,
    runId: info.runId,
    status: 'purging',
    requestedBy: input.requestedBy,
    reason: input.reason,
    requestedAt: run.requestedAt,
    pointOfNoReturnAt,
    ...(input.reapplyingDeletionRunId ? { reappliedDeletionRunId: input.reapplyingDeletionRunId } : {}),
    backup: run.preDeletionBackup ?? { skipped: true, reason: input.reason },
    foundAtPointOfNoReturn: run.foundAtPointOfNoReturn,
    steps: [],
    removed: { queue: {}, redis: {}, clickhouse: {}, postgres: {} },
    retention: {
      backupRetention: input.backupRetention,
      endsAt: new Date(new Date(pointOfNoReturnAt).getTime() + input.backupRetentionMs).toISOString(),
      // The whole run id: run ids are time-ordered (UUIDv7), so a prefix of two close runs is the same.
      shredWorkflowId: `${info.workflowId}-shred-${info.runId}`,
    },
  };
  if (!patched(RETRIES_IN_WORKFLOW_PATCH)) {
    return Object.assign(run, { certificate, untilDone: untilDoneActivities(input.storeDownAfterMs) });
  }
  // Each call may take as long as a healthy store needs; only failures count towards storeDownAfter.
  return Object.assign(run, {
    certificate,
    untilDone: untilDoneAttempts(Math.max(BASE_TIMEOUT_MS, input.storeDownAfterMs)),
    failuresParkAfterMs: input.storeDownAfterMs,
  });
}

/** Writes the certificate to the deletion log, parking while the log cannot be written. */
export async function recordCertificate(run: PurgingRun): Promise<void> {
  await untilSucceeded(run, 'certificate', () => run.untilDone.recordDeletionCertificate(run.certificate));
}

/** Completes the certificate, records it, and leaves the shredding of the backups to a child. */
export async function certify(run: PurgingRun): Promise<DeleteOrganizationResult> {
  const { certificate, info, input, status } = run;
  run.moveTo('certifying');
  certificate.status = 'completed';
  certificate.completedAt = new Date().toISOString();
  await recordCertificate(run);
  // The shredding waits out the retention in a child of its own, so this run ends now and its
  // history stays small; the child outlives it (ABANDON) and updates the certificate.
  await startChild(shredOrganizationBackups, {
    workflowId: certificate.retention.shredWorkflowId,
    parentClosePolicy: ParentClosePolicy.ABANDON,
    args: [{ orgId: input.orgId, deletionRunId: info.runId, retention: input.backupRetention }],
  });
  status.certificate = certificate;
  run.moveTo('done', `certificate ${info.runId}`);
  upsertMemo({
    deletion: `deleted; certificate ${info.runId}; backups shredded after ${certificate.retention.endsAt}`,
  });
  return { outcome: 'deleted', certificate };
}

/** The failure that ends a run past the point of no return: the abandoned one, recorded first; anything else as it is. */
export async function failurePastPointOfNoReturn(run: PurgingRun, err: unknown): Promise<unknown> {
  if (!(err instanceof Abandoned)) return err;
  const { certificate, status } = run;
  certificate.status = 'abandoned';
  status.certificate = certificate;
  run.moveTo('abandoned', err.message);
  // The abandonment itself must reach the log; this cannot park (the operator just ended parking).
  await quick.recordDeletionCertificate(certificate).catch((recordErr: unknown) => {
    status.notes.push(`the abandoned certificate could not be recorded: ${rootMessage(recordErr)}`);
  });
  const left = PURGE_STEPS.filter((s) => status.purge[s].state !== 'done');
  return ApplicationFailure.nonRetryable(
    `deletion of organization ${JSON.stringify(run.input.orgId)} ${err.message}; after the point of no return; not purged: ${left.join(', ') || 'none (residue check)'}`,
    DELETION_ABANDONED,
  );
}
