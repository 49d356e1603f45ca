// The first steps past the point of no return, before anything is purged: stop every writer of the
// organization, then make sure a verified backup holds its last state. The pre-deletion backup is
// as old as the grace period (up to days); what was written meanwhile would otherwise be purged
// with no copy.
import { executeChild, patched } from '@temporalio/workflow';
import { backupOrganization } from '../backup-organization';
import { untilDoneAttempts } from '../shared/activity-proxies';
import { fingerprintTimeoutMs } from '../shared/scaled-timeouts';
import { recordCertificate } from './certify';
import { untilSucceeded } from './parking';
import type { PurgingRun } from './state';

/** Runs recorded before this step existed replay without it. */
export const FINAL_STATE_PATCH = 'deletion-seals-and-backs-up-last-state';

/**
 * Seal → compare → final backup: revokes the organization's API keys and marks it so that the
 * project's own writers skip it (one transaction that waits for a chat batch being written); then
 * compares its fingerprint with the pre-deletion backup's; if anything changed, takes and verifies
 * a final backup, holds it, and names it in the certificate. Each step is retried until it
 * succeeds, parking in between like a purge step; nothing is purged before it succeeded.
 */
export async function secureLastState(run: PurgingRun): Promise<void> {
  await sealAndBackUpChanges(run);
  // The purge steps that follow report under `purging`, as before this step existed (status only: no command).
  run.moveTo('purging');
}

async function sealAndBackUpChanges(run: PurgingRun): Promise<void> {
  if (!patched(FINAL_STATE_PATCH)) return;
  const { certificate, info, input, status } = run;
  const { orgId } = input;

  run.moveTo('sealing', 'revoking API keys and stopping the chat archival and fan-outs');
  const sealed = await untilSucceeded(run, 'sealing', () =>
    run.untilDone.sealOrganizationForPurge({ orgId, deletionWorkflowId: info.workflowId, reason: input.reason }),
  );
  const preDeletion = certificate.backup.skipped ? undefined : certificate.backup.backupId;
  certificate.lastState = {
    sealedAt: sealed.sealedAt,
    apiKeysRevoked: sealed.apiKeysRevoked,
    changedObjects: [],
    ...(preDeletion ? { preDeletionBackupId: preDeletion } : {}),
  };
  // Skipping the backup was asked for with a reason; the run does not take one on its own.
  if (preDeletion === undefined) return;

  // Fingerprinting takes as long as the organization has rows: the call is allowed that long.
  const comparing =
    run.failuresParkAfterMs === undefined || certificate.backup.skipped
      ? run.untilDone
      : untilDoneAttempts(
          Math.max(
            fingerprintTimeoutMs(certificate.backup.artifacts.reduce((n, a) => n + (a.rows ?? 0), 0)),
            run.failuresParkAfterMs,
          ),
        );
  const changes = await untilSucceeded(run, 'sealing', () =>
    comparing.changesSinceBackup({ orgId, backupId: preDeletion }),
  );
  certificate.lastState.changed = changes.changedObjects.length > 0;
  certificate.lastState.changedObjects = changes.changedObjects;
  if (changes.changedObjects.length === 0) return;

  run.moveTo('final-backup', `changed since backup ${preDeletion}: ${changes.changedObjects.join(', ')}`);
  let attempt = 0;
  const summary = await untilSucceeded(run, 'final-backup', () =>
    // A failed child keeps its id; each attempt gets its own, so a retry starts afresh.
    executeChild(backupOrganization, {
      workflowId: `${info.workflowId}-final-backup-${++attempt}`,
      args: [
        {
          orgId,
          reason: `final backup at the point of no return (${info.workflowId}): ${input.reason}`,
          verify: true,
        },
      ],
    }),
  );
  const facts = await untilSucceeded(run, 'final-backup', async () => {
    await run.untilDone.holdBackup({
      orgId,
      backupId: summary.backupId,
      heldBy: info.workflowId,
      reason: `final backup of ${orgId} before its purge, kept ${input.backupRetention}`,
    });
    return run.untilDone.preDeletionBackupFacts({ orgId, backupId: summary.backupId });
  });
  certificate.backup = { ...facts, verified: facts.verified || summary.verification?.passed === true };
  certificate.lastState.finalBackupId = summary.backupId;
  status.notes.push(
    `final backup ${summary.backupId} holds the last state (changed since ${preDeletion}: ${changes.changedObjects.join(', ')})`,
  );
  // The log names the backup that holds the last state before the first purge.
  await recordCertificate(run);
}
