import type { Pool } from 'pg';
import { inTransaction } from './pg-transaction';

/**
 * The project's own records in PostgreSQL, which must outlive the organizations they name: the
 * deletion certificates and overrides (deletion-log.ts), and where a `replace` restore set an
 * organization's schemas aside (aside.ts). One schema, created in one place.
 */
export const OPS_SCHEMA = 'eloquent_ops';

const OPS_SCHEMA_SQL = `
CREATE SCHEMA IF NOT EXISTS eloquent_ops;
CREATE TABLE IF NOT EXISTS eloquent_ops.deletion_certificates (
  run_id text PRIMARY KEY,
  org_id text NOT NULL,
  workflow_id text NOT NULL,
  status text NOT NULL,
  requested_by text NOT NULL,
  reason text NOT NULL,
  point_of_no_return_at timestamptz NOT NULL,
  completed_at timestamptz,
  shredded_at timestamptz,
  certificate jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS deletion_certificates_org_id ON eloquent_ops.deletion_certificates (org_id);
CREATE TABLE IF NOT EXISTS eloquent_ops.deletion_overrides (
  org_id text NOT NULL,
  restore_workflow_id text NOT NULL,
  reason text NOT NULL,
  deletion_run_id text,
  recorded_at timestamptz NOT NULL,
  PRIMARY KEY (org_id, restore_workflow_id)
);
CREATE TABLE IF NOT EXISTS eloquent_ops.restore_asides (
  aside_schema text PRIMARY KEY,
  original_schema text NOT NULL,
  target_org text NOT NULL,
  set_aside_at timestamptz NOT NULL DEFAULT now()
);
`;

/** Any fixed number, distinct from the platform schema's: serializes concurrent CREATE IF NOT EXISTS. */
const OPS_SCHEMA_LOCK = 0x454c4f50;

/** Creates `eloquent_ops` and its tables when missing; idempotent and safe to run concurrently. */
export async function ensureOpsSchema(pool: Pool): Promise<void> {
  await inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [OPS_SCHEMA_LOCK]);
    await client.query(OPS_SCHEMA_SQL);
  });
}
