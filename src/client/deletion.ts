import { randomUUID } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import {
  DELETION_REQUEST_REFUSED,
  deletionWorkflowId,
  type CancelDeletionSignal,
  type DeletionRequest,
  type DeletionRequestAccepted,
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

/**
 * A deletion refused an operator request: a cancel after the point of no return, `retryNow` or
 * `abandon` of a run that is not parked. The message is the run's own reason; nothing was changed.
 */
export class DeletionRequestRefusedError extends Error {
  override readonly name = 'DeletionRequestRefusedError';
  constructor(
    readonly request: DeletionRequest,
    readonly workflowId: string,
    /** Why, as the run's validator said it. */
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** What a deletion answered to an operator request; `viaSignal` for a run begun before the Updates existed. */
export type DeletionRequestOutcome =
  DeletionRequestAccepted | { request: DeletionRequest; workflowId: string; viaSignal: true };

/**
 * Sends one operator request to the organization's deletion as a Temporal Update, so the run's own
 * validator decides and the answer comes back: accepted (with what happens now) or refused (thrown).
 * A run begun before the Updates existed has only the signal: it is sent as one, and the outcome
 * says so (`viaSignal`: the run may note and ignore it; its `deletionStatus` notes tell).
 * @throws DeletionRequestRefusedError with the run's reason when it refuses the request.
 * @throws WorkflowNotFoundError when no deletion of the organization runs (or ever ran).
 */
export async function requestOfDeletion(
  client: Client,
  orgId: string,
  request: DeletionRequest,
  who: { by: string; reason: string },
): Promise<DeletionRequestOutcome> {
  const workflowId = deletionWorkflowId(orgId);
  const handle = client.workflow.getHandle(workflowId);
  try {
    return await handle.executeUpdate<DeletionRequestAccepted, [typeof who]>(request, { args: [who] });
  } catch (err) {
    if (!(err instanceof WorkflowUpdateFailedError)) throw err;
    const cause = err.cause;
    const type = (cause as { type?: unknown } | undefined)?.type;
    if (type === DELETION_REQUEST_REFUSED)
      throw new DeletionRequestRefusedError(request, workflowId, cause?.message ?? '');
    if (cause?.message.startsWith('No registered handler for update')) {
      await handle.signal(request, who);
      return { request, workflowId, viaSignal: true };
    }
    throw err;
  }
}

/**
 * Cancels the organization's deletion during its grace period (before the point of no return).
 * @throws DeletionRequestRefusedError naming the reason when the run cannot honour it any more.
 */
export async function cancelOrganizationDeletion(
  client: Client,
  orgId: string,
  signal: CancelDeletionSignal,
): Promise<DeletionRequestOutcome> {
  return requestOfDeletion(client, orgId, 'cancelDeletion', signal);
}

/**
 * `retryNow` or `abandon` for a parked deletion.
 * @throws DeletionRequestRefusedError when the run is not parked.
 */
export async function decideParkedDeletion(
  client: Client,
  orgId: string,
  decision: 'retryNow' | 'abandon',
  signal: OperatorDecisionSignal,
): Promise<DeletionRequestOutcome> {
  return requestOfDeletion(client, orgId, decision, signal);
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
