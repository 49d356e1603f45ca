import { CancellationScope, patched } from '@temporalio/workflow';
import type { DeleteOrganizationInput, DeleteOrganizationResult } from '../../contracts/deletion';
import type { DeletionPlan } from '../../contracts/plans';
import { planDeletion } from '../dry-run-plans';
import { invalid, parseDeletionInput } from './input';
import { certify, failurePastPointOfNoReturn, passPointOfNoReturn, recordCertificate } from './certify';
import { undoBeforePointOfNoReturn } from './compensations';
import { secureLastState } from './final-state';
import { backUp, checkOwnership, gracePeriod, holdBackup, markDeleting, preflight, validate } from './prepare';
import { purgeEveryStore } from './purge';
import { checkResidue } from './residue-check';
import { startDeletion } from './state';

export {
  abandonSignal,
  cancelDeletionSignal,
  DELETION_ABANDONED,
  deletionStatusQuery,
  retryNowSignal,
} from './definitions';

/** Patch id: the deletion checks what the organization owns in PostgreSQL before it changes anything. */
const CHECKS_POSTGRES_OWNERSHIP = 'deletion-checks-postgres-ownership';

/**
 * Deletes one organization from every store, provably, and only after a verified backup:
 *
 * validate → preflight → what it owns (PostgreSQL) → backup + verify → mark `deleting`, revoke sessions → grace period
 * (`cancelDeletion` undoes the mark) → hold the backup → POINT OF NO RETURN → revoke API keys and
 * seal the organization against the project's writers → final backup + verify if anything changed
 * since the pre-deletion backup → queue → Redis →
 * ClickHouse → PostgreSQL schemas → shared rows, organization row last → residue check →
 * certificate → (child, after the retention) crypto-shredding of the organization's backups.
 *
 * Before the point of no return every change has a compensation, run in reverse on failure or
 * cancellation; sessions stay revoked (users log in again). After it, each purge step is idempotent
 * and retried with backoff; a step failing for longer than `storeDownAfter` parks the run, visible in
 * the `deletionStatus` query, the memo and the UI's current details, until `retryNow` or `abandon`.
 * The workflow id must be `delete-org-<orgId>`, so a second deletion of one organization cannot start.
 */
export async function deleteOrganization(input: DeleteOrganizationInput & { dryRun: true }): Promise<DeletionPlan>;
export async function deleteOrganization(input: DeleteOrganizationInput): Promise<DeleteOrganizationResult>;
export async function deleteOrganization(
  input: DeleteOrganizationInput,
): Promise<DeleteOrganizationResult | DeletionPlan> {
  // The dry run: the plan of what this deletion would remove; nothing is changed, nothing marked.
  if (input?.dryRun !== undefined && typeof input.dryRun !== 'boolean') throw invalid('dryRun: expected true or false');
  if (input?.dryRun === true) {
    const { orgId, skipBackup, reason, gracePeriod } = parseDeletionInput(input);
    return planDeletion({ orgId, skipBackup, reason, gracePeriod });
  }
  const run = startDeletion(input);
  try {
    await validate(run);
    await preflight(run);
    // Runs begun before this step replay without it.
    if (patched(CHECKS_POSTGRES_OWNERSHIP)) await checkOwnership(run);
    await backUp(run);
    await markDeleting(run);
    await gracePeriod(run);
    await holdBackup(run);
  } catch (err) {
    return undoBeforePointOfNoReturn(run, err);
  }

  const purging = passPointOfNoReturn(run);
  // A Temporal cancel cannot stop what must finish: only `abandon` ends a run after this line.
  return CancellationScope.nonCancellable(async () => {
    try {
      // The log entry first: from now on a restore refuses this organization, even if this run dies.
      await recordCertificate(purging);
      await secureLastState(purging);
      await purgeEveryStore(purging);
      await checkResidue(purging);
      return await certify(purging);
    } catch (err) {
      throw await failurePastPointOfNoReturn(purging, err);
    }
  });
}
