import { FailureType, isTransientNetworkError, messageOf, permanentFailure } from '../../errors';
import { clickHouseErrorCode } from '../../platform/clickhouse-error-code';

/**
 * Server error codes a retry may outlive: 159 TIMEOUT_EXCEEDED, 202 TOO_MANY_SIMULTANEOUS_QUERIES,
 * 209 SOCKET_TIMEOUT, 210 NETWORK_ERROR, 242 TABLE_IS_READ_ONLY (while the server restarts).
 */
export const RETRYABLE_CLICKHOUSE_CODES: readonly string[] = ['159', '202', '209', '210', '242'];

/**
 * Whether a retry may help: connection problems, the codes above, and anything that carries no
 * server code (the retry policy bounds those). Any other server code is ClickHouse's verdict on the
 * query (bad DDL, unknown table, no permission) and does not change by asking again.
 */
export function isRetryableClickHouseError(err: unknown): boolean {
  if (isTransientNetworkError(err)) return true;
  const code = clickHouseErrorCode(err);
  return code === undefined || !/^\d+$/.test(code) || RETRYABLE_CLICKHOUSE_CODES.includes(code);
}

/**
 * What a ClickHouse activity throws for `err`: the error itself when it is retryable, otherwise a
 * non-retryable `StoreRejected` failure naming the organization and object. Failures already
 * classified pass unchanged.
 */
export function classifyClickHouseError(err: unknown, orgId: string | undefined, object: string): unknown {
  if (!(err instanceof Error) || err.name === 'ApplicationFailure' || err.name === 'AbortError') return err;
  if (isRetryableClickHouseError(err)) return err;
  return permanentFailure(
    FailureType.StoreRejected,
    `ClickHouse rejected the request (code ${clickHouseErrorCode(err)}): ${messageOf(err)}`,
    { store: 'clickhouse', ...(orgId !== undefined ? { orgId } : {}), object },
    err,
  );
}

/** Runs `work` and throws what it throws classified by {@link classifyClickHouseError}. */
export async function withClickHouseClassification<T>(
  orgId: string | undefined,
  object: string,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw classifyClickHouseError(err, orgId, object);
  }
}
