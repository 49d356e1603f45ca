// The compensation stack of a saga: each compensation is registered before the call it undoes and,
// on failure or cancellation, all of them run in reverse. Workflow-safe.
import { CancellationScope } from '@temporalio/workflow';
import { rootMessage } from './failures';

/** What became of one compensation: done, or failed with its reason. */
export interface CompensationOutcome {
  what: string;
  /** The innermost failure message when the compensation failed. */
  failure?: string;
}

export class Compensations {
  private readonly stack: Array<{ what: string; run: () => Promise<unknown> }> = [];

  /**
   * Registers `run`, described by `what` as done ("status restored to \"active\""). Register before
   * the call it undoes: if the call committed but its answer was lost, the compensation still runs.
   */
  add(what: string, run: () => Promise<unknown>): void {
    this.stack.push({ what, run });
  }

  /**
   * Runs every registered compensation, newest first, and empties the stack. Runs even in a
   * cancelled workflow (the compensations cannot be cancelled). A failed compensation does not stop
   * the others: it is reported in the outcomes, never hidden, and never replaces the original error.
   * `stopAtFirstFailure` is for runs begun by code that stopped there (see the caller's `patched()`).
   */
  async runAll(options: { stopAtFirstFailure?: boolean } = {}): Promise<CompensationOutcome[]> {
    const outcomes: CompensationOutcome[] = [];
    const pending = this.stack.splice(0).reverse();
    await CancellationScope.nonCancellable(async () => {
      for (const c of pending) {
        try {
          await c.run();
          outcomes.push({ what: c.what });
        } catch (err) {
          outcomes.push({ what: c.what, failure: rootMessage(err) });
          if (options.stopAtFirstFailure) break;
        }
      }
    });
    return outcomes;
  }
}

/** One line per outcome: `what`, or `FAILED: what: reason`. */
export function describeCompensations(outcomes: CompensationOutcome[]): string[] {
  return outcomes.map((o) => (o.failure === undefined ? o.what : `FAILED: ${o.what}: ${o.failure}`));
}
