import type { Pool, PoolClient } from 'pg';

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
