// The steps before the point of no return. Each change made here has a compensation, registered
// before the call that makes it; each step ends by checking for a cancel.
import { ApplicationFailure, condition, executeChild, upsertMemo } from '@temporalio/workflow';
import { deletionWorkflowId } from '../../contracts/deletion';
import { FailureType } from '../../errors';
import { backupOrganization } from '../backup-organization';
import { platformPreflight } from '../platform-preflight';
import { glanceActivities as glance, sagaStepActivities as quick } from '../shared/activity-proxies';
import { rootMessage } from '../shared/failures';
import { invalid } from './input';
import type { DeletionRun } from './state';

/** Thrown by a step when the operator cancelled during the grace period; caught by the workflow. */
export class DeletionCancelled extends Error {
  override readonly name = 'DeletionCancelled';
}

function checkCancelled(run: DeletionRun): void {
  if (run.cancelRequest) throw new DeletionCancelled();
}

/** The run's id, the organization, and that no backup, restore or other deletion of it runs. */
export async function validate(run: DeletionRun): Promise<void> {
  const { info, input } = run;
  const { orgId } = input;
  run.moveTo('validating');
  if (info.workflowId !== deletionWorkflowId(orgId)) {
    throw invalid(
      `workflow id: expected ${JSON.stringify(deletionWorkflowId(orgId))}, got ${JSON.stringify(info.workflowId)} (one id per organization keeps two deletions from running at once)`,
    );
  }
  if (input.reapplyingDeletionRunId !== undefined) {
    // A restore may have brought back some stores and not the organization row.
    const found = await quick.describeForDeletion(orgId);
    if (!found.exists) {
      throw ApplicationFailure.nonRetryable(
        `organization ${JSON.stringify(orgId)} has nothing left in any store; nothing to delete again; nothing was changed`,
        FailureType.UnknownOrganization,
      );
    }
  } else {
    await quick.assertOrganizationExists(orgId);
  }
  const parent = info.parent?.workflowId;
  await quick.assertNoConflictingOperation({
    orgId,
    operations: ['restore', 'delete', 'backup'],
    allowWorkflowIds: parent ? [parent] : [],
  });
  checkCancelled(run);
}

/** Every store answers, or the run stops naming the one that does not. */
export async function preflight(run: DeletionRun): Promise<void> {
  run.moveTo('preflight');
  await executeChild(platformPreflight, { workflowId: `${run.info.workflowId}-preflight`, args: [{}] });
  checkCancelled(run);
}

/**
 * What the organization owns in PostgreSQL is what its backup holds and its purge removes: no table
 * outside the data map holds its rows, and nothing outside its schemas depends on them (a neighbour's
 * view, a foreign key), which DROP SCHEMA … CASCADE would drop. Refused by name before any change.
 */
export async function checkOwnership(run: DeletionRun): Promise<void> {
  await quick.checkPostgresDeletable(run.input.orgId);
  checkCancelled(run);
}

/** A verified backup of the organization, unless the request skips it (with its reason). */
export async function backUp(run: DeletionRun): Promise<void> {
  const { info, input, status } = run;
  run.moveTo('backing-up');
  if (input.skipBackup) {
    run.preDeletionBackup = { skipped: true, reason: input.reason };
    status.backupSkipped = { reason: input.reason };
  } else {
    // A failed verification fails the child and so this run, before anything was changed.
    const summary = await executeChild(backupOrganization, {
      workflowId: `${info.workflowId}-backup`,
      args: [{ orgId: input.orgId, reason: `pre-deletion backup (${info.workflowId}): ${input.reason}`, verify: true }],
    });
    status.backupId = summary.backupId;
    const facts = await quick.preDeletionBackupFacts({ orgId: input.orgId, backupId: summary.backupId });
    run.preDeletionBackup = { ...facts, verified: facts.verified || summary.verification?.passed === true };
  }
  checkCancelled(run);
}

/** Marks the organization `deleting` (compensated) and revokes its sessions (not compensated). */
export async function markDeleting(run: DeletionRun): Promise<void> {
  const { orgId } = run.input;
  run.moveTo('marking-deleting');
  const previousStatus = await quick.readOrganizationStatus(orgId);
  if (previousStatus !== undefined) {
    run.status.previousStatus = previousStatus;
    // Registered before the call: if the mark committed but its answer was lost, the compare-and-set
    // compensation still puts the status back, and if it never committed it changes nothing.
    run.compensations.add(`status restored to ${JSON.stringify(previousStatus)}`, () =>
      quick.restoreOrganizationStatus({ orgId, status: previousStatus }),
    );
    await quick.markOrganizationDeleting({ orgId, expected: previousStatus });
  }
  // Not compensated, by design: a revoked session cannot be given back; users log in again.
  run.sessionsRevoked = await quick.revokeOrganizationSessions(orgId);
  run.status.sessionsRevoked = run.sessionsRevoked;
  checkCancelled(run);
}

/** Waits `gracePeriod`, or until a `cancelDeletion` signal. */
export async function gracePeriod(run: DeletionRun): Promise<void> {
  const { input, status } = run;
  run.moveTo('grace-period', `until a \`cancelDeletion\` signal or ${input.gracePeriod} pass`);
  if (input.gracePeriodMs > 0) {
    status.gracePeriodEndsAt = new Date(new Date().getTime() + input.gracePeriodMs).toISOString();
    upsertMemo({ deletion: `grace period until ${status.gracePeriodEndsAt}; cancel with the cancelDeletion signal` });
    await condition(() => run.cancelRequest !== undefined, input.gracePeriodMs);
  }
  checkCancelled(run);
}

/**
 * The last step before the point of no return: what the organization holds now (for the
 * certificate), then the hold on the pre-deletion backup. The hold comes last: until here the
 * backup is the newest one of the organization (no backup may start while a deletion runs) and
 * pruning never removes the newest, so a cancelled deletion leaves no hold behind.
 */
export async function holdBackup(run: DeletionRun): Promise<void> {
  const { info, input, status } = run;
  // Informational only: a store that is down now is the purge's business (it retries and parks),
  // so a failed description is recorded and the deletion goes on.
  run.foundAtPointOfNoReturn = await glance
    .describeForDeletion(input.orgId)
    .then((d) => d.lines)
    .catch((err: unknown) => [`not described at the point of no return: ${rootMessage(err)}`]);
  checkCancelled(run);
  if (status.backupId !== undefined) {
    await quick.holdBackup({
      orgId: input.orgId,
      backupId: status.backupId,
      heldBy: info.workflowId,
      reason: `pre-deletion backup of ${input.orgId}, kept ${input.backupRetention}`,
    });
  }
}
