// After the point of no return a step is retried until it succeeds; between failed rounds the run
// parks for an operator, visible in the status query, the memo and the UI's current details.
import {
  ActivityFailure,
  ApplicationFailure,
  condition,
  setCurrentDetails,
  sleep,
  upsertMemo,
} from '@temporalio/workflow';
import { NON_RETRYABLE_FAILURE_TYPES } from '../../errors';
import type { ParkedState } from '../../contracts/deletion';
import { rootMessage } from '../shared/failures';
import type { OperatorDecision, PurgingRun } from './state';

const NON_RETRYABLE_TYPES: ReadonlySet<string> = new Set(NON_RETRYABLE_FAILURE_TYPES);

/** Thrown when the operator abandons a parked run; the workflow turns it into the abandoned failure. */
export class Abandoned extends Error {
  override readonly name = 'Abandoned';
}

// A function, so the compiler does not narrow `run.decision` to its last assignment across awaits.
function takeDecision(run: PurgingRun): OperatorDecision | undefined {
  const made = run.decision;
  run.decision = undefined;
  return made;
}

/** Waits for `retryNow`, `abandon` or the automatic retry; returns normally to retry, throws {@link Abandoned}. */
export async function park(run: PurgingRun, step: ParkedState['step'], reason: string): Promise<void> {
  const { input, status, certificate } = run;
  status.parked = { step, since: new Date().toISOString(), reason, signals: ['retryNow', 'abandon'] };
  upsertMemo({ deletion: `PARKED at ${step}: ${reason} — send retryNow or abandon {by, reason}` });
  setCurrentDetails(
    `**PARKED** at \`${step}\`: ${reason}\n\nSend the \`retryNow\` or \`abandon\` signal with \`{"by": "...", "reason": "..."}\`; retried automatically every ${input.parkedRetryIntervalMs / 1000} s.`,
  );
  run.decision = undefined;
  await condition(() => run.decision !== undefined, input.parkedRetryIntervalMs);
  const made = takeDecision(run);
  status.parked = undefined;
  upsertMemo({ deletion: `purging since ${status.pointOfNoReturnAt ?? ''}` });
  run.moveTo(status.step);
  if (made?.kind === 'abandon') {
    status.notes.push(`abandoned at ${step} by ${made.signal.by}: ${made.signal.reason}`);
    certificate.abandoned = { by: made.signal.by, reason: made.signal.reason, at: new Date().toISOString(), step };
    throw new Abandoned(`abandoned at ${step} by ${made.signal.by}: ${made.signal.reason}`);
  }
  status.notes.push(
    made
      ? `retryNow at ${step} by ${made.signal.by}: ${made.signal.reason}`
      : `retried ${step} automatically after being parked`,
  );
}

/** Backoff of the workflow's own retries, as the activity retry policy had it: 1 s doubling to 30 s. */
const FIRST_RETRY_MS = 1_000;
const LAST_RETRY_MS = 30_000;

/**
 * Runs `work` until it succeeds, parking between rounds that failed for `storeDownAfter`. Where the
 * run makes one attempt per call ({@link PurgingRun.failuresParkAfterMs}), failed attempts are
 * retried here with backoff until they have been failing for that long; a failure no retry can fix
 * parks at once.
 */
export async function untilSucceeded<T>(
  run: PurgingRun,
  step: ParkedState['step'],
  work: () => Promise<T>,
  onFailure?: (message: string) => void,
): Promise<T> {
  for (;;) {
    let failingSince: number | undefined;
    let backoffMs = FIRST_RETRY_MS;
    for (;;) {
      try {
        return await work();
      } catch (err) {
        const budgetMs = run.failuresParkAfterMs;
        failingSince ??= Date.now();
        // A child workflow (the final backup) retries inside itself; its failure parks at once.
        const retryable = budgetMs !== undefined && err instanceof ActivityFailure && !isPermanent(err);
        if (!retryable || Date.now() - failingSince + backoffMs > budgetMs) {
          const message = rootMessage(err);
          onFailure?.(message);
          await park(run, step, message);
          break;
        }
        await sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, LAST_RETRY_MS);
      }
    }
  }
}

/** An activity failure its activity marked non-retryable, or of a type no retry can fix. */
function isPermanent(err: ActivityFailure): boolean {
  const cause = err.cause;
  if (!(cause instanceof ApplicationFailure)) return false;
  return cause.nonRetryable || NON_RETRYABLE_TYPES.has(cause.type ?? '');
}
