import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import {
  deletionWorkflowId,
  type CancelDeletionSignal,
  type DeleteOrganizationInput,
  type DeleteOrganizationResult,
  type DeletionStatus,
  type OperatorDecisionSignal,
  type ReapplyDeletionsInput,
  type ReapplyDeletionsResult,
} from '../contracts/deletion';
import { OperationAttribute, OrgIdAttribute } from '../search-attributes';

/** A second deletion of an organization whose deletion is running; names the running workflow. */
export class DeletionAlreadyRunningError extends Error {
  override readonly name = 'DeletionAlreadyRunningError';
  constructor(readonly workflowId: string) {
    super(`already running: ${workflowId}`);
  }
}

/**
 * Starts `deleteOrganization` under its one workflow id, `delete-org-<orgId>`. A deletion of the
 * organization that is still running is never joined: the start fails.
 * @throws DeletionAlreadyRunningError (`already running: delete-org-<orgId>`) when one runs.
 */
export async function startOrganizationDeletion(
  client: Client,
  input: DeleteOrganizationInput,
  options: { taskQueue: string },
): Promise<WorkflowHandle<(input: DeleteOrganizationInput) => Promise<DeleteOrganizationResult>>> {
  const workflowId = deletionWorkflowId(input.orgId);
  try {
    return await client.workflow.start<(input: DeleteOrganizationInput) => Promise<DeleteOrganizationResult>>(
      'deleteOrganization',
      {
        taskQueue: options.taskQueue,
        workflowId,
        args: [input],
        workflowIdConflictPolicy: 'FAIL',
        // A finished deletion does not block the next one (after a deliberate restore, or to re-apply it).
        workflowIdReusePolicy: 'ALLOW_DUPLICATE',
        // Set at start, not only by the workflow's upsert: a conflict check right after sees them.
        typedSearchAttributes: [
          { key: OrgIdAttribute, value: input.orgId },
          { key: OperationAttribute, value: 'delete' },
        ],
      },
    );
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw new DeletionAlreadyRunningError(workflowId);
    throw err;
  }
}

/** The `deletionStatus` of an organization's deletion (running or, while the server keeps it, finished). */
export async function deletionStatus(client: Client, orgId: string): Promise<DeletionStatus> {
  return client.workflow.getHandle(deletionWorkflowId(orgId)).query<DeletionStatus>('deletionStatus');
}

/**
 * Milliseconds left in the grace period of a deletion `status`, as of `nowMs` (default: now), never
 * negative; undefined outside the grace period.
 */
export function graceTimeLeftMs(status: DeletionStatus, nowMs: number = Date.now()): number | undefined {
  if (status.step !== 'grace-period' || status.gracePeriodEndsAt === undefined) return undefined;
  return Math.max(0, Date.parse(status.gracePeriodEndsAt) - nowMs);
}

/** Sends `cancelDeletion`: effective during the grace period, noted and ignored after it. */
export async function cancelOrganizationDeletion(
  client: Client,
  orgId: string,
  signal: CancelDeletionSignal,
): Promise<void> {
  await client.workflow.getHandle(deletionWorkflowId(orgId)).signal('cancelDeletion', signal);
}

/** Sends `retryNow` or `abandon` to a parked deletion. */
export async function decideParkedDeletion(
  client: Client,
  orgId: string,
  decision: 'retryNow' | 'abandon',
  signal: OperatorDecisionSignal,
): Promise<void> {
  await client.workflow.getHandle(deletionWorkflowId(orgId)).signal(decision, signal);
}

/**
 * The CLI's `reapply-deletions`: runs `reapplyDeletions` and waits for it. Run it after restoring a
 * whole-platform dump by hand (`psql < full_backup.sql`).
 * @returns which organizations were deleted again; rejects naming those that could not be.
 */
export async function reapplyDeletions(
  client: Client,
  input: ReapplyDeletionsInput,
  options: { taskQueue: string },
): Promise<ReapplyDeletionsResult> {
  return client.workflow.execute<(input: ReapplyDeletionsInput) => Promise<ReapplyDeletionsResult>>(
    'reapplyDeletions',
    {
      taskQueue: options.taskQueue,
      workflowId: `reapply-deletions-${new Date().toISOString().replace(/[-:.]/g, '')}-${randomUUID().slice(0, 8)}`,
      args: [input],
      typedSearchAttributes: [{ key: OperationAttribute, value: 'delete' }],
    },
  );
}
