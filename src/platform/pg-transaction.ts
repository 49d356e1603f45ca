import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';

/**
 * Runs `work` in one transaction on a connection of its own: COMMIT when it resolves, ROLLBACK when
 * it throws (the work's error is rethrown, never one of the rollback), and the connection goes back
 * to the pool either way.
 * @param begin the opening statement, e.g. `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`.
 */
export async function inTransaction<T>(
  pool: Pool,
  work: (client: PoolClient) => Promise<T>,
  begin = 'BEGIN',
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query(begin);
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Runs one query with JIT compilation off, on `db`'s connection (a connection of the pool's when `db`
 * is the pool), and puts the session's `jit` setting back after it. For walks of the catalogs: the
 * planner estimates a recursive walk far above `jit_above_cost` (3.3 M rows for the 41 an
 * organization's types really have), and PostgreSQL then spent 0.7–3 s compiling a query that runs
 * in 5 ms, in every backup, deletion and restore. Inside a transaction that then fails, the
 * transaction's rollback puts the setting back instead.
 */
export async function queryWithoutJit<R extends QueryResultRow>(
  db: Pool | PoolClient,
  sql: string,
  params: unknown[],
): Promise<QueryResult<R>> {
  const client = isPoolClient(db) ? db : await db.connect();
  try {
    // NULL where the server has no such setting (before PostgreSQL 11): nothing to turn off.
    const previous = (await client.query<{ jit: string | null }>(`SELECT current_setting('jit', true) AS jit`)).rows[0]
      ?.jit;
    if (previous === null || previous === undefined) return await client.query<R>(sql, params);
    await client.query(`SELECT set_config('jit', 'off', false)`);
    try {
      return await client.query<R>(sql, params);
    } finally {
      await client.query(`SELECT set_config('jit', $1, false)`, [previous]).catch(() => undefined);
    }
  } finally {
    if (!isPoolClient(db)) client.release();
  }
}

function isPoolClient(db: Pool | PoolClient): db is PoolClient {
  return typeof (db as Partial<PoolClient>).release === 'function';
}
