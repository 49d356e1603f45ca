// What every fan-out (a child workflow or activity per organization) shares: bounded concurrency,
// and a summary that stays the same size however many organizations there are, because it is
// carried across continue-as-new and ends in the result. Workflow-safe: no I/O.

/** Failures a fan-out keeps by name (the most recent ones); the rest are only counted. */
export const FAILURES_KEPT = 20;

/** Organizations per run before a fan-out continues as new. @default 100 */
export const DEFAULT_FAN_OUT_PAGE_SIZE = 100;

/** One organization that failed, with the root cause. */
export interface FanOutFailure {
  orgId: string;
  error: string;
}

/**
 * Appends `failure` to `kept`, dropping the oldest beyond {@link FAILURES_KEPT}, and returns the
 * list (the same array). Count every failure yourself; the list holds only the last ones.
 */
export function keepLastFailures<F>(kept: F[], failure: F, limit = FAILURES_KEPT): F[] {
  kept.push(failure);
  if (kept.length > limit) kept.splice(0, kept.length - limit);
  return kept;
}

/**
 * Runs `work` for every item, at most `concurrency` at a time, in the order given. `work` handles
 * its own failures (a fan-out reports them and goes on).
 */
export async function forEachConcurrently<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  const queue = [...items];
  const runner = async (): Promise<void> => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, runner));
}
