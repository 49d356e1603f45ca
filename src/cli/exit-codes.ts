import { ScheduleNotFoundError, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { ConfigError } from '../config';
import { isTransientNetworkError } from '../errors';
import { DeletionRequestRefusedError } from '../client/deletion';
import { InvalidRequestError } from '../client/request-error';
import { ScheduleFileError } from '../schedules/schedule-file';

/**
 * Exit codes of `eloquent-recovery`, so scripts can tell failure kinds apart:
 * - 0 `Ok`: done.
 * - 1 `OperationFailed`: the operation ran and failed (a checksum mismatch, a failed verification).
 * - 2 `Usage`: bad command line or input (unknown command, invalid id, missing `--confirm`); nothing was sent.
 * - 3 `Unavailable`: Temporal or a store could not be reached; retry later.
 * - 4 `Refused`: refused as a conflict or because its target does not exist (another operation runs
 *   on the organization, no such workflow or schedule, confirmation declined, a deletion refused a
 *   cancel after its point of no return or a retry while not parked).
 */
export const ExitCode = { Ok: 0, OperationFailed: 1, Usage: 2, Unavailable: 3, Refused: 4 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A command-line problem found before anything was sent. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The operator declined, or a precondition refused the request. */
export class RefusedError extends Error {
  override readonly name = 'RefusedError';
}

/** The `type` of every ApplicationFailure in an error's cause chain, outermost first. */
function failureTypes(err: unknown): string[] {
  const types: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    const type = (current as { type?: unknown }).type;
    if (typeof type === 'string') types.push(type);
    current = current.cause;
  }
  return types;
}

/** The exit code for an error the CLI caught. */
export function exitCodeOf(err: unknown): ExitCode {
  if (
    err instanceof UsageError ||
    err instanceof InvalidRequestError ||
    err instanceof ConfigError ||
    err instanceof ScheduleFileError
  )
    return ExitCode.Usage;
  if (
    err instanceof RefusedError ||
    err instanceof DeletionRequestRefusedError ||
    err instanceof WorkflowNotFoundError ||
    err instanceof ScheduleNotFoundError ||
    err instanceof WorkflowExecutionAlreadyStartedError
  ) {
    return ExitCode.Refused;
  }
  const types = failureTypes(err);
  if (types.includes('OperationConflict')) return ExitCode.Refused;
  if (types.some((t) => t === 'InvalidInput' || t === 'InvalidOrganizationId')) return ExitCode.Usage;
  if (types.includes('StoreUnavailable')) return ExitCode.Unavailable;
  if (types.length === 0 && isTransientNetworkError(err)) return ExitCode.Unavailable;
  const code = (err as { code?: unknown } | null)?.code;
  // gRPC UNAVAILABLE (14) / DEADLINE_EXCEEDED (4): the Temporal server did not answer.
  if (types.length === 0 && (code === 14 || code === 4)) return ExitCode.Unavailable;
  return ExitCode.OperationFailed;
}
