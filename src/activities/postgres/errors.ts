import { FailureType, messageOf, permanentFailure } from '../../errors';

/**
 * One rule of the SQLSTATE table: a five-character code, or a two-character class that covers every
 * code starting with it. An exact code wins over its class.
 */
export interface SqlStateRule {
  sqlstate: string;
  retryable: boolean;
  /** Why a retry does or does not help; the table is the documentation. */
  why: string;
}

/**
 * Every PostgreSQL activity classifies the server's errors with this table, so a backup, a restore
 * and a deletion agree on what heals by waiting. Anything the server reports that no rule names is
 * permanent: it is PostgreSQL's verdict on the statement (42 syntax or permission, 22 data, 23
 * constraint, 0A unsupported, 3D unknown database, XX internal, …), and running the same statement
 * again gives the same answer.
 *
 * Decisions where the three classifiers of before disagreed:
 * - 40001 serialization failure is retried (it was permanent in deletion, which parked a deletion
 *   on a transient conflict): the transaction lost a race with another one, and PostgreSQL's own
 *   advice is to run it again. The same holds for 40P01 deadlock and 40003 (completion unknown).
 * - 57014 query canceled is retried (it was permanent in backup): it comes from outside the
 *   statement, from `statement_timeout` while the server is busy or waits for a lock, or from an
 *   operator's `pg_cancel_backend` during an incident, and says nothing wrong about the statement.
 *   Timeouts are transient in this project's error model (ARCHITECTURE.md, Errors); the activity's
 *   retry policy bounds the attempts, and a deletion parks with the reason after `storeDownAfter`.
 * - 55P03 lock not available is retried (it was permanent in backup and describe): `lock_timeout`
 *   or NOWAIT gave up on a lock another transaction holds, which it releases when it ends.
 */
export const POSTGRES_SQLSTATE_RULES: readonly SqlStateRule[] = [
  { sqlstate: '08', retryable: true, why: 'connection exception: the connection broke or could not be made' },
  {
    sqlstate: '40',
    retryable: true,
    why: 'transaction rollback (40001 serialization failure, 40P01 deadlock, 40003 completion unknown): another transaction won; a new attempt runs on its own',
  },
  {
    sqlstate: '40002',
    retryable: false,
    why: 'integrity constraint violated at commit (a deferred constraint): the data is wrong, not the moment',
  },
  {
    sqlstate: '53',
    retryable: true,
    why: 'insufficient resources (disk, memory, too many connections): the server recovers as other work ends',
  },
  {
    sqlstate: '55P03',
    retryable: true,
    why: 'lock not available (lock_timeout, NOWAIT): the holder releases it when its transaction ends',
  },
  {
    sqlstate: '57',
    retryable: true,
    why: 'operator intervention: 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now (starting up); the server comes back',
  },
  {
    sqlstate: '57014',
    retryable: true,
    why: 'query canceled by statement_timeout or pg_cancel_backend: a cancel from outside says nothing wrong about the statement',
  },
  {
    sqlstate: '25P03',
    retryable: true,
    why: 'idle-in-transaction timeout ended the session: a new attempt opens a new one (it was retried before by its message)',
  },
];

const SQLSTATE_SHAPE = /^[0-9A-Z]{5}$/;

/**
 * Whether a retry may help with an error of this SQLSTATE, by {@link POSTGRES_SQLSTATE_RULES}:
 * the exact code's rule, else its class's rule, else permanent.
 */
export function isRetryableSqlState(sqlstate: string): boolean {
  const rule =
    POSTGRES_SQLSTATE_RULES.find((r) => r.sqlstate === sqlstate) ??
    POSTGRES_SQLSTATE_RULES.find((r) => r.sqlstate === sqlstate.slice(0, 2));
  return rule?.retryable ?? false;
}

/**
 * The SQLSTATE of an error the server reported, also when a step wrapped the driver's error in its
 * own (`cause`). Only errors with a `severity` count: node-postgres sets it on every server error,
 * and it keeps Node's own five-letter codes (EPIPE, EPERM) from passing for a SQLSTATE.
 */
export function sqlStateOf(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    const { code, severity, cause } = current as { code?: unknown; severity?: unknown; cause?: unknown };
    if (typeof code === 'string' && SQLSTATE_SHAPE.test(code) && typeof severity === 'string') return code;
    current = cause;
  }
  return undefined;
}

/** Whether retrying may outlive a PostgreSQL error: everything without a SQLSTATE (network, tools) is left to the retry policy. */
export function isRetryablePostgresError(err: unknown): boolean {
  const sqlstate = sqlStateOf(err);
  return sqlstate === undefined || isRetryableSqlState(sqlstate);
}

/**
 * What a PostgreSQL activity throws for `err`: the error itself when a retry may help (a broken
 * connection, a restarting server, a lost serialization race, and anything without a SQLSTATE,
 * which the retry policy bounds), otherwise a non-retryable `StoreRejected` failure naming the
 * organization, the object and what was being done. Failures already classified pass unchanged.
 * @param doing what the activity was doing, e.g. `the backup`, `purgeOrganizationSchemas`.
 */
export function classifyPostgresError(
  err: unknown,
  orgId: string | undefined,
  doing: string,
  object?: string,
): unknown {
  if (!(err instanceof Error) || err.name === 'ApplicationFailure' || err.name === 'AbortError') return err;
  if (isRetryablePostgresError(err)) return err;
  const sqlstate = sqlStateOf(err) ?? '';
  return permanentFailure(
    FailureType.StoreRejected,
    `PostgreSQL rejected ${doing} (SQLSTATE ${sqlstate}): ${messageOf(err)}`,
    { store: 'postgres', ...(orgId !== undefined ? { orgId } : {}), ...(object !== undefined ? { object } : {}) },
    err,
  );
}

/** Runs `work` and throws what it throws classified by {@link classifyPostgresError}. */
export async function withPostgresClassification<T>(
  orgId: string | undefined,
  doing: string,
  work: () => Promise<T>,
  object?: string,
): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw classifyPostgresError(err, orgId, doing, object);
  }
}

/** What pg_dump, pg_restore and psql print when the connection, not the statement, failed. */
const TOOL_CONNECTION_TROUBLE =
  /could not connect|connection to server .* failed|server closed the connection unexpectedly|terminating connection|the database system is (starting up|shutting down|in recovery mode)|Connection refused|could not receive data|could not send data|SSL SYSCALL error|no connection to the server/i;

/**
 * How a PostgreSQL tool's failure is classified from the words it printed on stderr, since a child
 * process reports no SQLSTATE: a broken connection or a restarting server is retried; a statement
 * the server refused (`ERROR:  type "public.citext" does not exist`) fails the same way on every
 * attempt, so it is permanent and its words name what to fix; the pg_dump/server version mismatch
 * and a full disk are permanent too; anything else is left to the retry policy.
 */
export function classifyToolFailure(tool: string, words: string, context: { orgId?: string; object?: string }): Error {
  const message = `${tool} failed${context.object !== undefined ? ` for ${context.object}` : ''}: ${words}`;
  const where = { store: 'postgres' as const, ...context };
  if (TOOL_CONNECTION_TROUBLE.test(words)) return new Error(message);
  if (/No space left/i.test(words)) return permanentFailure(FailureType.DiskFull, message, where);
  if (/server version mismatch|aborting because of server version/i.test(words)) {
    return permanentFailure(FailureType.ToolVersionMismatch, message, where);
  }
  if (/\bERROR:\s/.test(words)) {
    return permanentFailure(FailureType.StoreRejected, message, where);
  }
  return new Error(message);
}
