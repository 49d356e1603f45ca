import type { Pool } from 'pg';
import { FailureType, permanentFailure } from '../../errors';
import { quotePgIdent } from '../../platform/quoting';

/** Scratch databases this project creates; only names with this prefix are ever dropped. */
export const SCRATCH_DATABASE_PREFIX = 'eloquent_scratch_';
const SCRATCH_NAME = /^eloquent_scratch_[a-z0-9_]{1,40}$/;

function assertScratchName(name: string): void {
  if (!SCRATCH_NAME.test(name)) {
    throw permanentFailure(
      FailureType.InvalidInput,
      `scratch database name ${JSON.stringify(name)} must match ${SCRATCH_NAME}`,
      { store: 'postgres', object: name },
    );
  }
}

/** Creates a scratch database unless it exists (a retried attempt finds it). */
export async function createScratchDatabase(pool: Pool, name: string): Promise<void> {
  assertScratchName(name);
  const exists = await pool.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  if (!exists.rowCount) await pool.query(`CREATE DATABASE ${quotePgIdent(name)}`);
}

/** Drops a scratch database, ending its sessions first; dropping one that is gone succeeds. */
export async function dropScratchDatabase(pool: Pool, name: string): Promise<boolean> {
  assertScratchName(name);
  const exists = await pool.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  if (!exists.rowCount) return false;
  await pool.query(
    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [name],
  );
  await pool.query(`DROP DATABASE IF EXISTS ${quotePgIdent(name)}`);
  return true;
}

/** Scratch databases whose names start with `prefix` (for sweeping leftovers). */
export async function listScratchDatabases(pool: Pool, prefix = SCRATCH_DATABASE_PREFIX): Promise<string[]> {
  const result = await pool.query<{ datname: string }>(
    'SELECT datname FROM pg_database WHERE left(datname, length($1)) = $1',
    [prefix],
  );
  return result.rows.map((r) => r.datname).filter((name) => SCRATCH_NAME.test(name));
}
