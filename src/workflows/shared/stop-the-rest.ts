// Parallel steps that write, and a cleanup after them. Workflow-safe: no I/O.
import { CancellationScope } from '@temporalio/workflow';

/**
 * Runs `steps` at once and returns their results in their order. When one fails, the others are
 * cancelled and all of them are awaited before the first failure is thrown, so the caller's cleanup
 * never runs under a step that is still writing: a streaming activity (WAIT_CANCELLATION_COMPLETED)
 * answers a cancellation only once it has stopped. `Promise.all` throws at the first failure and
 * leaves the rest running, writing after the cleanup has removed what they wrote.
 */
export async function allOrStopTheRest<T>(steps: ReadonlyArray<() => Promise<T>>): Promise<T[]> {
  const scope = new CancellationScope();
  let first: { failure: unknown } | undefined;
  const running = steps.map((step) =>
    scope.run(step).catch((failure: unknown) => {
      if (first === undefined) {
        first = { failure };
        scope.cancel();
      }
      throw failure;
    }),
  );
  const settled = await Promise.allSettled(running);
  if (first !== undefined) throw first.failure;
  return settled.map((result) => {
    if (result.status === 'rejected') throw result.reason;
    return result.value;
  });
}
