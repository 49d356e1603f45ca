// Reading a failure chain (activity → application failure, child → its cause …) in workflow code.
import { ApplicationFailure, rootCause, TemporalFailure } from '@temporalio/workflow';

/** The innermost message of a failure chain (the SDK's `rootCause`): a run's own words sit a few causes deep. */
export function rootMessage(err: unknown): string {
  return rootCause(err) ?? String(err);
}

/** The type of the innermost typed ApplicationFailure in the chain, e.g. `UnknownOrganization`. */
export function rootFailureType(err: unknown): string | undefined {
  const inner = err instanceof TemporalFailure ? rootFailureType(err.cause) : undefined;
  return inner ?? (err instanceof ApplicationFailure && err.type ? err.type : undefined);
}
