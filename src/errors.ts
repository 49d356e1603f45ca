import { ApplicationFailure } from '@temporalio/common';

/** The stores an operation touches; used in every message so a reader knows where it failed. */
export type StoreName = 'postgres' | 'clickhouse' | 'queue' | 'redis' | 'storage' | 'kubernetes' | 'temporal';

/**
 * Failure types that workflows and retry policies match on. A type listed in
 * `NON_RETRYABLE_FAILURE_TYPES` is never retried by an activity retry policy.
 */
export const FailureType = {
  InvalidInput: 'InvalidInput',
  InvalidOrganizationId: 'InvalidOrganizationId',
  UnknownOrganization: 'UnknownOrganization',
  UnknownBackup: 'UnknownBackup',
  ChecksumMismatch: 'ChecksumMismatch',
  ToolVersionMismatch: 'ToolVersionMismatch',
  DiskFull: 'DiskFull',
  StoreUnavailable: 'StoreUnavailable',
  StoreRejected: 'StoreRejected',
  OperationConflict: 'OperationConflict',
  DecryptionFailed: 'DecryptionFailed',
  VerificationFailed: 'VerificationFailed',
  RestoreRefused: 'RestoreRefused',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

export const NON_RETRYABLE_FAILURE_TYPES: readonly FailureType[] = [
  FailureType.InvalidInput,
  FailureType.InvalidOrganizationId,
  FailureType.UnknownOrganization,
  FailureType.UnknownBackup,
  FailureType.ChecksumMismatch,
  FailureType.ToolVersionMismatch,
  FailureType.DiskFull,
  FailureType.StoreRejected,
  FailureType.OperationConflict,
  FailureType.DecryptionFailed,
  FailureType.VerificationFailed,
  FailureType.RestoreRefused,
];

/** Where an error happened: the organization, store and object it concerns. */
export interface FailureContext {
  store: StoreName;
  orgId?: string;
  /** Table, schema, subject, key pattern, artifact or address. */
  object?: string;
}

/** Prefix that names the organization, store and object: `[postgres org=acme object=public.users]`. */
export function describeContext(context: FailureContext): string {
  const parts: string[] = [context.store];
  if (context.orgId !== undefined) parts.push(`org=${context.orgId}`);
  if (context.object !== undefined) parts.push(`object=${context.object}`);
  return `[${parts.join(' ')}]`;
}

/** A failure that retrying cannot fix (bad input, unknown organization, checksum mismatch, full disk). */
export function permanentFailure(
  type: FailureType,
  message: string,
  context?: FailureContext,
  cause?: unknown,
): ApplicationFailure {
  const text = context ? `${describeContext(context)} ${message}` : message;
  return ApplicationFailure.create({
    type,
    message: text,
    nonRetryable: true,
    cause: cause instanceof Error ? cause : undefined,
  });
}

/** Network-level error codes that mean "try again later", whatever the store. */
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** The `code` of an error or of any error in its `cause` chain (pg, node and undici put it in different places). */
export function errorCodes(err: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    const inner = (current as { errors?: unknown }).errors;
    if (Array.isArray(inner)) for (const e of inner) codes.push(...errorCodes(e));
    current = (current as { cause?: unknown }).cause;
  }
  return codes;
}

/** True when the error is a connection problem that a retry may outlive. */
export function isTransientNetworkError(err: unknown): boolean {
  if (errorCodes(err).some((code) => TRANSIENT_NETWORK_CODES.has(code))) return true;
  const message = err instanceof Error ? err.message : String(err);
  return /socket hang up|connection (terminated|closed|reset)|timed? ?out|ECONNREFUSED|other side closed/i.test(
    message,
  );
}

/** The message of anything thrown. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) {
    if (err.message) return err.message;
    const codes = errorCodes(err);
    if (codes.length > 0) return codes.join(', ');
    return err.name;
  }
  return String(err);
}

/**
 * `err` as an Error without losing its `code`. Errors made by Node itself fail `instanceof Error` in
 * other realms (jest's sandbox, vm contexts), so the shape is checked instead of the prototype.
 */
export function asError(err: unknown): Error {
  if (err instanceof Error) return err;
  if (typeof err === 'object' && err !== null && 'message' in err && typeof err.message === 'string')
    return Object.assign(new Error(err.message), err);
  return new Error(String(err));
}
