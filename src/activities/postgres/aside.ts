import type { Pool, PoolClient } from 'pg';
import { FailureType, permanentFailure } from '../../errors';
import type { OrganizationDataMap } from '../../platform/data-map';
import { listOrgSchemas } from '../../platform/discovery';
import { ensureOpsSchema } from '../../platform/ops-schema';
import { inTransaction } from '../../platform/pg-transaction';
import { quotePgIdent } from '../../platform/quoting';
import { assertNoOutsideDependents } from './boundary';

/*
 * A `replace` restore sets the target's schemas aside (renamed, never copied: the same tables, OIDs,
 * sequences owned by their columns, grants and policies move with the schema) and loads the backup
 * under the real names. Where each schema went is recorded in `eloquent_ops.restore_asides` in the
 * renaming transaction, so putting them back or dropping them needs nothing but the prefix, even
 * after the worker that renamed them died.
 */

/** Schemas set aside by a restore start with this; no sweeper of scratch places ever matches it. */
export const ASIDE_PREFIX = 'eloquent_aside_';
const ASIDE_PREFIX_NAME = /^eloquent_aside_[a-z0-9]{1,24}$/;

/** One schema of the target, renamed aside. */
export interface AsideSchema {
  original: string;
  aside: string;
}

function assertAsidePrefix(prefix: string): void {
  if (!ASIDE_PREFIX_NAME.test(prefix)) {
    throw permanentFailure(
      FailureType.InvalidInput,
      `aside prefix ${JSON.stringify(prefix)} must match ${ASIDE_PREFIX_NAME}`,
      { store: 'postgres', object: prefix },
    );
  }
}

async function recordedAsides(client: PoolClient, prefix: string): Promise<AsideSchema[]> {
  const rows = await client.query<{ original: string; aside: string }>(
    `SELECT original_schema AS original, aside_schema AS aside FROM eloquent_ops.restore_asides
      WHERE left(aside_schema, length($1) + 1) = $1 || '_' ORDER BY aside_schema`,
    [prefix],
  );
  return rows.rows;
}

/**
 * Renames every schema of the organization to `<prefix>_<n>` in ONE transaction and records where
 * each went. Idempotent: a retry after the commit finds the records and returns them.
 * @throws non-retryable `InvalidInput` when an object outside the organization depends on its
 *   schemas (it would follow the rename, then be dropped with the aside schemas).
 */
export async function setPostgresAside(pool: Pool, map: OrganizationDataMap, prefix: string): Promise<AsideSchema[]> {
  assertAsidePrefix(prefix);
  // The record table is created before, in a transaction of its own: eloquent_ops is one schema.
  await ensureOpsSchema(pool);
  return inTransaction(pool, async (client) => {
    const recorded = await recordedAsides(client, prefix);
    if (recorded.length > 0) return recorded;
    const schemas = await listOrgSchemas(client, map);
    await assertNoOutsideDependents(client, map, schemas);
    const asides = schemas.map((original, n) => ({ original, aside: `${prefix}_${n}` }));
    for (const { original, aside } of asides) {
      await client.query(`ALTER SCHEMA ${quotePgIdent(original)} RENAME TO ${quotePgIdent(aside)}`);
      await client.query(
        'INSERT INTO eloquent_ops.restore_asides (aside_schema, original_schema, target_org) VALUES ($1, $2, $3)',
        [aside, original, map.orgId],
      );
    }
    return asides;
  });
}

/**
 * Puts the organization back as it was, in ONE transaction: whatever schemas of the organization
 * exist now (a restore's partial load) are dropped, and the schemas set aside under `prefix` get
 * their names back. Idempotent: nothing recorded under `prefix` means nothing to do.
 * @returns the schemas renamed back.
 */
export async function putPostgresAsideBack(
  pool: Pool,
  map: OrganizationDataMap,
  prefix: string,
): Promise<AsideSchema[]> {
  assertAsidePrefix(prefix);
  await ensureOpsSchema(pool);
  return inTransaction(pool, async (client) => {
    const recorded = await recordedAsides(client, prefix);
    if (recorded.length === 0) return [];
    const partial = await listOrgSchemas(client, map);
    await assertNoOutsideDependents(client, map, partial);
    for (const schema of partial) await client.query(`DROP SCHEMA ${quotePgIdent(schema)} CASCADE`);
    for (const { original, aside } of recorded) {
      await client.query(`ALTER SCHEMA ${quotePgIdent(aside)} RENAME TO ${quotePgIdent(original)}`);
    }
    await client.query('DELETE FROM eloquent_ops.restore_asides WHERE aside_schema = ANY($1)', [
      recorded.map((r) => r.aside),
    ]);
    return recorded;
  });
}

/**
 * Drops the schemas set aside under `prefix` and their records, in one transaction: the last step
 * of a `replace` whose new copy is in place. Idempotent.
 * @returns the aside schemas dropped.
 */
export async function dropPostgresAside(pool: Pool, prefix: string): Promise<string[]> {
  assertAsidePrefix(prefix);
  await ensureOpsSchema(pool);
  return inTransaction(pool, async (client) => {
    const recorded = await recordedAsides(client, prefix);
    for (const { aside } of recorded) await client.query(`DROP SCHEMA IF EXISTS ${quotePgIdent(aside)} CASCADE`);
    await client.query('DELETE FROM eloquent_ops.restore_asides WHERE aside_schema = ANY($1)', [
      recorded.map((r) => r.aside),
    ]);
    return recorded.map((r) => r.aside);
  });
}

/** True when schemas are recorded as set aside under `prefix` (a restore in swap mode may then drop a partial load). */
export async function hasPostgresAside(client: Pool | PoolClient, prefix: string): Promise<boolean> {
  assertAsidePrefix(prefix);
  const table = await client.query<{ found: string | null }>(
    "SELECT to_regclass('eloquent_ops.restore_asides')::text AS found",
  );
  if (table.rows[0]?.found == null) return false;
  const rows = await client.query(
    `SELECT 1 FROM eloquent_ops.restore_asides WHERE left(aside_schema, length($1) + 1) = $1 || '_' LIMIT 1`,
    [prefix],
  );
  return (rows.rowCount ?? 0) > 0;
}
