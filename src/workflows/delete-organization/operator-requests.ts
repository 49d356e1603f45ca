// The operator's requests as Temporal Updates: each validator refuses, with the reason, a request
// the run would not honour (a cancel after the point of no return, a retry of a run that is not
// parked), so the caller gets an error instead of the silence of a signal that was noted and ignored.
// Registering update handlers adds no command: histories recorded before them replay unchanged.
import { ApplicationFailure, defineUpdate, setHandler } from '@temporalio/workflow';
import {
  DELETION_REQUEST_REFUSED,
  type CancelDeletionSignal,
  type DeletionRequestAccepted,
  type OperatorDecisionSignal,
} from '../../contracts/deletion';
import type { OperatorDecision, DeletionRun } from './state';

export const cancelDeletionUpdate = defineUpdate<DeletionRequestAccepted, [CancelDeletionSignal]>('cancelDeletion');
export const retryNowUpdate = defineUpdate<DeletionRequestAccepted, [OperatorDecisionSignal]>('retryNow');
export const abandonUpdate = defineUpdate<DeletionRequestAccepted, [OperatorDecisionSignal]>('abandon');

function refused(run: DeletionRun, request: string, why: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `${request} refused by ${run.info.workflowId}: ${why}`,
    DELETION_REQUEST_REFUSED,
  );
}

/** `{by, reason}`, both non-empty text: they are recorded. */
function requireWho(run: DeletionRun, request: string, input: unknown): void {
  const { by, reason } = (input ?? {}) as { by?: unknown; reason?: unknown };
  for (const [field, value] of [
    ['by', by],
    ['reason', reason],
  ] as const) {
    if (typeof value !== 'string' || value.trim() === '')
      throw refused(run, request, `${field}: expected a non-empty text (it is recorded); got ${JSON.stringify(value)}`);
  }
}

/**
 * Why a cancel would not be honoured now, or undefined when it would. The last `checkCancelled`
 * runs when the grace period ends: from then on (holding the backup, then the point of no return)
 * a cancel would only be noted, so it is refused already then.
 */
function cancelRefusal(run: DeletionRun): string | undefined {
  const { status } = run;
  if (run.pointOfNoReturn)
    return `the point of no return was passed at ${status.pointOfNoReturnAt ?? '?'}; the purge is running (step ${status.step}) and cannot be undone`;
  if (status.step === 'cancelled' || status.step === 'failed')
    return `the deletion has already ended (${status.step}); nothing to cancel`;
  if (status.step === 'grace-period') {
    const endsAt = status.gracePeriodEndsAt;
    if (endsAt === undefined || Date.now() >= Date.parse(endsAt))
      return `the grace period ${endsAt ? `ended at ${endsAt}` : 'was 0s'}; the point of no return is being passed`;
  }
  return undefined;
}

/** Registers the `cancelDeletion`, `retryNow` and `abandon` updates of a deletion run. */
export function registerOperatorRequests(run: DeletionRun): void {
  const { status } = run;
  const accepted = (
    request: DeletionRequestAccepted['request'],
    who: { by: string; reason: string },
    effect: string,
    alreadyRequested = false,
  ): DeletionRequestAccepted => ({
    request,
    workflowId: run.info.workflowId,
    step: status.step,
    by: who.by,
    reason: who.reason,
    effect,
    ...(alreadyRequested ? { alreadyRequested } : {}),
  });

  setHandler(
    cancelDeletionUpdate,
    (request) => {
      const earlier = run.cancelRequest;
      if (earlier)
        return accepted(
          'cancelDeletion',
          earlier,
          `already requested at ${earlier.at}; the deletion is being undone`,
          true,
        );
      run.cancelRequest = { by: request.by.trim(), reason: request.reason.trim(), at: new Date().toISOString() };
      status.notes.push(`cancelDeletion accepted from ${run.cancelRequest.by}: ${run.cancelRequest.reason}`);
      return accepted(
        'cancelDeletion',
        run.cancelRequest,
        `the deletion stops at the end of step ${status.step}, and its changes are undone`,
      );
    },
    {
      validator: (request) => {
        requireWho(run, 'cancelDeletion', request);
        const refusal = cancelRefusal(run);
        if (refusal !== undefined) throw refused(run, 'cancelDeletion', refusal);
      },
    },
  );

  const decision = (kind: OperatorDecision['kind'], request: 'retryNow' | 'abandon') => ({
    handler: (signal: OperatorDecisionSignal) => {
      const step = status.parked?.step ?? status.step;
      run.decision = { kind, signal: { by: signal.by.trim(), reason: signal.reason.trim() } };
      return accepted(
        request,
        run.decision.signal,
        kind === 'retry'
          ? `the parked step ${step} is tried again now`
          : `the deletion stops at ${step}, leaving what is not yet purged (recorded in the certificate)`,
      );
    },
    validator: (signal: OperatorDecisionSignal) => {
      requireWho(run, request, signal);
      if (status.parked === undefined)
        throw refused(run, request, `the deletion is not parked (step ${status.step}); nothing waits for an operator`);
      if (run.decision !== undefined)
        throw refused(
          run,
          request,
          `${run.decision.kind === 'retry' ? 'retryNow' : 'abandon'} by ${run.decision.signal.by} is already being carried out`,
        );
    },
  });
  const retry = decision('retry', 'retryNow');
  setHandler(retryNowUpdate, retry.handler, { validator: retry.validator });
  const abandon = decision('abandon', 'abandon');
  setHandler(abandonUpdate, abandon.handler, { validator: abandon.validator });
}
