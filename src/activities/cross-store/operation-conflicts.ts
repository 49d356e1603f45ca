import type { Client } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { FailureType, permanentFailure } from '../../errors';
import { parseOrgId } from '../../platform/org-id';
import type { OperationName } from '../../search-attributes';

export interface OperationActivityDeps {
  /** A Temporal client on the worker's namespace, for visibility queries. */
  temporal: Client;
}

export interface RunningOperation {
  workflowId: string;
  runId: string;
  type: string;
  operation: string;
}

export function createOperationActivities(deps: OperationActivityDeps) {
  return {
    /**
     * Fails non-retryable (`OperationConflict`, naming the running workflow id) when another run of one
     * of `operations` is running on the organization. The calling workflow, its children and the
     * workflows in `allowWorkflowIds` (its parents) are never a conflict.
     * Runs are found by their `OrgId` and `Operation` search attributes, which every workflow sets.
     */
    async assertNoConflictingOperation(input: {
      orgId: string;
      operations: OperationName[];
      allowWorkflowIds?: string[];
    }): Promise<void> {
      const orgId = parseOrgId(input.orgId);
      const selfId = Context.current().info.workflowExecution?.workflowId ?? '';
      const running = await listRunning(deps.temporal, orgId, input.operations);
      // Children of the calling workflow (`<id>-backup`, `<id>-verify`) are part of it, not rivals.
      // `allowWorkflowIds` names the caller's ancestors (a deletion running its backup child).
      const allowed = new Set([selfId, ...(input.allowWorkflowIds ?? [])]);
      const conflicts = running.filter(
        (run) => !allowed.has(run.workflowId) && !run.workflowId.startsWith(`${selfId}-`),
      );
      const first = conflicts[0];
      if (first) {
        throw permanentFailure(
          FailureType.OperationConflict,
          `another operation on organization ${JSON.stringify(orgId)} is running: ${first.operation} ${first.workflowId}${conflicts.length > 1 ? ` (and ${conflicts.length - 1} more)` : ''}`,
          { store: 'temporal', orgId, object: first.workflowId },
        );
      }
    },
  };
}

/** Running workflows of an organization with one of the given operations. */
export async function listRunning(
  temporal: Client,
  orgId: string,
  operations: readonly OperationName[],
): Promise<RunningOperation[]> {
  // orgId passed parseOrgId and operations are our own constants: both are safe inside the quotes.
  const query = `OrgId = '${orgId}' AND ExecutionStatus = 'Running' AND Operation IN (${operations.map((o) => `'${o}'`).join(', ')})`;
  const runs: RunningOperation[] = [];
  for await (const run of temporal.workflow.list({ query })) {
    const operation = run.searchAttributes?.Operation;
    runs.push({
      workflowId: run.workflowId,
      runId: run.runId,
      type: run.type,
      operation: Array.isArray(operation) ? String(operation[0]) : '',
    });
  }
  return runs;
}
