import type { JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import { JetStreamApiError } from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import type { Pool, PoolClient } from 'pg';
import { DEFAULT_PLATFORM_MODEL, type PlatformModel, type SharedTable } from './data-map';
import { quotePgQualified } from './quoting';

/**
 * The shared tables of the platform. Every child table keys its rows by `(org_id, …)` so the rows
 * of one organization can be copied under another id (a clone, a restore into a scratch database)
 * without colliding with the original's keys.
 *
 * The platform refuses an API key listed in `eloquent_ops.api_key_revocations`. The list is a table
 * of its own, not a column of `api_keys`, and lives beside the deletion log in the project's own
 * schema, which discovery knows to outlive the organizations it names (a `public` table with an
 * `org_id` column outside the model refuses every deletion): it is no organization's data (not backed up, not fingerprinted), so
 * revoking a deleted organization's keys changes no fingerprint, and the rows of backups taken
 * before it existed still restore and verify as they were. It has no foreign key: a revocation
 * outlives the key it names (no secret, no name; the deletion workflow that revoked it).
 */
const PLATFORM_SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS public.organizations (
  id text PRIMARY KEY,
  name text NOT NULL,
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'deleting', 'deleted')),
  plan text,
  settings jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS public.users (
  org_id text NOT NULL REFERENCES public.organizations (id),
  id uuid NOT NULL,
  email text NOT NULL,
  display_name text,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_login_at timestamptz,
  PRIMARY KEY (org_id, id)
);
CREATE TABLE IF NOT EXISTS public.user_roles (
  org_id text NOT NULL,
  user_id uuid NOT NULL,
  role text NOT NULL,
  PRIMARY KEY (org_id, user_id, role),
  FOREIGN KEY (org_id, user_id) REFERENCES public.users (org_id, id)
);
CREATE TABLE IF NOT EXISTS public.api_keys (
  org_id text NOT NULL REFERENCES public.organizations (id),
  id uuid NOT NULL,
  user_id uuid NOT NULL,
  name text NOT NULL,
  hashed_key bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (org_id, id),
  FOREIGN KEY (org_id, user_id) REFERENCES public.users (org_id, id)
);
CREATE SCHEMA IF NOT EXISTS eloquent_ops;
CREATE TABLE IF NOT EXISTS eloquent_ops.api_key_revocations (
  org_id text NOT NULL,
  key_id uuid NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT now(),
  revoked_by text NOT NULL,
  reason text NOT NULL,
  PRIMARY KEY (org_id, key_id)
);
`;

/** Any fixed number: serializes concurrent `ensurePlatformSchema` calls (CREATE IF NOT EXISTS races). */
const PLATFORM_SCHEMA_LOCK = 0x454c4f51;

/**
 * Creates the shared platform tables when missing (idempotent, safe to run concurrently). Backup
 * and restore call it on scratch databases before loading shared rows.
 * @param pool a pool connected to the database to prepare.
 */
export async function ensurePlatformSchema(pool: Pool | PoolClient): Promise<void> {
  const client = 'release' in pool ? pool : await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [PLATFORM_SCHEMA_LOCK]);
    await client.query(PLATFORM_SCHEMA_SQL);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    if (client !== pool) client.release();
  }
}

/** A foreign key between two of the given tables: `child` references `parent`. */
export interface SharedTableDependency {
  child: string;
  parent: string;
}

/**
 * The foreign keys among `tables`, read from `pg_constraint` (self-references are ignored).
 * Names are `schema.table`.
 */
export async function sharedTableDependencies(
  pool: Pool,
  tables: readonly SharedTable[],
): Promise<SharedTableDependency[]> {
  const names = tables.map((t) => `${t.schema}.${t.table}`);
  const result = await pool.query<{ child: string; parent: string }>(
    `SELECT DISTINCT cn.nspname || '.' || c.relname AS child, pn.nspname || '.' || p.relname AS parent
       FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
       JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
      WHERE k.contype = 'f' AND k.conrelid <> k.confrelid
        AND cn.nspname || '.' || c.relname = ANY($1) AND pn.nspname || '.' || p.relname = ANY($1)`,
    [names],
  );
  return result.rows;
}

/**
 * Orders shared tables so every table comes after the tables it references, keeping the declared
 * order where foreign keys allow. Work that inserts goes in this order; work that deletes, reversed.
 * @throws Error when the foreign keys form a cycle (no order can respect them).
 */
export async function sharedTablesInForeignKeyOrder(
  pool: Pool,
  tables: readonly SharedTable[],
): Promise<SharedTable[]> {
  const dependencies = await sharedTableDependencies(pool, tables);
  const key = (t: SharedTable) => `${t.schema}.${t.table}`;
  const remaining = [...tables];
  const ordered: SharedTable[] = [];
  while (remaining.length > 0) {
    const placed = new Set(ordered.map(key));
    const next = remaining.findIndex((t) => dependencies.every((d) => d.child !== key(t) || placed.has(d.parent)));
    if (next < 0)
      throw new Error(`foreign keys among ${remaining.map(key).join(', ')} form a cycle; no order respects them`);
    ordered.push(...remaining.splice(next, 1));
  }
  return ordered;
}

/** Quoted `schema.table` of a shared table, for SQL text. */
export function sharedTableSql(table: SharedTable): string {
  return quotePgQualified(table.schema, table.table);
}

/**
 * Creates the platform's JetStream streams when missing (idempotent). Existing streams are left as
 * they are: their retention belongs to the platform, not to this tool.
 * @returns the info of every stream of the model.
 */
export async function ensureStreams(
  jsm: JetStreamManager,
  model: PlatformModel = DEFAULT_PLATFORM_MODEL,
): Promise<StreamInfo[]> {
  const infos: StreamInfo[] = [];
  for (const s of model.queue.streams) {
    infos.push(await ensureStream(jsm, s.stream, `${s.subjectRoot}.>`, s.maxAgeMs));
  }
  return infos;
}

async function ensureStream(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
  maxAgeMs: number,
): Promise<StreamInfo> {
  try {
    return await jsm.streams.info(stream);
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
  }
  try {
    return await jsm.streams.add({ name: stream, subjects: [subject], max_age: nanos(maxAgeMs) });
  } catch (err) {
    // Another process created it between our look and our add: theirs is as good as ours.
    try {
      return await jsm.streams.info(stream);
    } catch {
      throw err;
    }
  }
}

/** True when a JetStream API error says the stream does not exist. */
export function isStreamNotFound(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.code === 10059;
  return err instanceof Error && /stream not found/i.test(err.message);
}
