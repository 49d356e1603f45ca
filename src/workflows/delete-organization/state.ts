// The state one deletion run carries from step to step, and the handlers that read and change it.
import {
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityInterfaceFor,
  type WorkflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import type {
  CancelDeletionSignal,
  DeleteOrganizationInput,
  DeletionCertificate,
  DeletionStatus,
  DeletionStep,
  OperatorDecisionSignal,
} from '../../contracts/deletion';
import { OperationAttribute, OrgIdAttribute } from '../../search-attributes';
import { Compensations } from '../shared/compensations';
import { trackProgress, type MoveTo } from '../shared/progress';
import { abandonSignal, cancelDeletionSignal, deletionStatusQuery, retryNowSignal } from './definitions';
import { parseDeletionInput, type DeletionInput } from './input';
import { registerOperatorRequests } from './operator-requests';

/** An operator's answer to a parked run. */
export interface OperatorDecision {
  kind: 'retry' | 'abandon';
  signal: OperatorDecisionSignal;
}

/** Everything a deletion run knows, passed to each step; `status` is what the query answers. */
export interface DeletionRun {
  readonly input: DeletionInput;
  readonly info: WorkflowInfo;
  readonly requestedAt: string;
  readonly status: DeletionStatus;
  readonly moveTo: MoveTo<DeletionStep>;
  /** What undoes the changes made before the point of no return. */
  readonly compensations: Compensations;
  /** Set by `cancelDeletion` during the grace period. */
  cancelRequest?: CancelDeletionSignal & { at: string };
  /** Set by `retryNow` or `abandon` while the run is parked. */
  decision?: OperatorDecision;
  pointOfNoReturn: boolean;
  preDeletionBackup?: DeletionCertificate['backup'];
  sessionsRevoked: number;
  /** What the organization held at the point of no return, for the certificate. */
  foundAtPointOfNoReturn: string[];
}

/** A run past the point of no return: it has a certificate, which each purge step fills in. */
export interface PurgingRun extends DeletionRun {
  readonly certificate: DeletionCertificate;
  /** Activities retried for `storeDownAfter` before the run parks. */
  readonly untilDone: ActivityInterfaceFor<Activities>;
  /**
   * Set when {@link untilDone} makes one attempt per call: how long the workflow retries failed
   * attempts before parking (`storeDownAfter`). Unset in runs that began before, whose activities
   * retry on their own within `storeDownAfter`.
   */
  readonly failuresParkAfterMs?: number;
}

/** Checks the input, tags the run and registers the status query and the signals. */
export function startDeletion(rawInput: DeleteOrganizationInput): DeletionRun {
  const info = workflowInfo();
  const input = parseDeletionInput(rawInput);
  const { orgId } = input;
  upsertSearchAttributes([
    { key: OrgIdAttribute, value: orgId },
    { key: OperationAttribute, value: 'delete' },
  ]);
  const status: DeletionStatus = {
    orgId,
    workflowId: info.workflowId,
    step: 'validating',
    requestedBy: input.requestedBy,
    reason: input.reason,
    purge: {
      queue: { state: 'pending', rounds: 0 },
      redis: { state: 'pending', rounds: 0 },
      clickhouse: { state: 'pending', rounds: 0 },
      'postgres-schemas': { state: 'pending', rounds: 0 },
      'postgres-shared-rows': { state: 'pending', rounds: 0 },
    },
    notes: [],
  };
  const run: DeletionRun = {
    input,
    info,
    requestedAt: new Date().toISOString(),
    status,
    moveTo: trackProgress(status, `deletion of \`${orgId}\``),
    compensations: new Compensations(),
    pointOfNoReturn: false,
    sessionsRevoked: 0,
    foundAtPointOfNoReturn: [],
  };
  // The time left in the grace period is the caller's to compute from `gracePeriodEndsAt`: a query
  // sees the clock of the run's last task, which stands still while the run waits.
  setHandler(deletionStatusQuery, () => ({ ...status }));
  setHandler(cancelDeletionSignal, (signal) => {
    if (run.pointOfNoReturn) {
      status.notes.push(
        `cancelDeletion by ${signal.by} ignored: the point of no return was passed at ${status.pointOfNoReturnAt ?? '?'}`,
      );
      return;
    }
    run.cancelRequest ??= { by: String(signal.by), reason: String(signal.reason), at: new Date().toISOString() };
  });
  const operatorSignal = (kind: OperatorDecision['kind']) => (signal: OperatorDecisionSignal) => {
    if (status.parked === undefined) {
      status.notes.push(
        `${kind === 'retry' ? 'retryNow' : 'abandon'} by ${signal.by} ignored: the deletion is not parked (step ${status.step})`,
      );
      return;
    }
    run.decision ??= { kind, signal: { by: String(signal.by), reason: String(signal.reason) } };
  };
  setHandler(retryNowSignal, operatorSignal('retry'));
  setHandler(abandonSignal, operatorSignal('abandon'));
  // The same requests as Updates, which refuse what the signals above can only note and ignore.
  registerOperatorRequests(run);
  return run;
}
