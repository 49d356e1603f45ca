import type { DeletionRequestOutcome } from '../../client/deletion';
import type { CommandContext } from '../command';
import { ExitCode } from '../exit-codes';

/**
 * Prints what a deletion answered to an operator request. A refusal never reaches here: it is
 * thrown (`DeletionRequestRefusedError`, exit 4) with the run's reason.
 */
export function printDeletionAnswer(ctx: CommandContext, outcome: DeletionRequestOutcome): ExitCode {
  if ('viaSignal' in outcome) {
    ctx.print(
      `${outcome.request} sent as a signal to ${outcome.workflowId} (a run begun before requests could be answered); check its notes with: eloquent-recovery status ${outcome.workflowId}`,
      { ok: true, ...outcome },
    );
    return ExitCode.Ok;
  }
  ctx.print(
    `${outcome.request} accepted by ${outcome.workflowId} at step ${outcome.step}${outcome.alreadyRequested ? ' (already requested)' : ''}: ${outcome.effect}`,
    { ok: true, ...outcome },
  );
  return ExitCode.Ok;
}
