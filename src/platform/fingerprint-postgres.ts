import type { Pool } from 'pg';
import { ORG_PLACEHOLDER, type OrganizationDataMap } from './data-map';
import { listOrgSchemas, listRelations } from './discovery';
import { formatHash } from './content-hash';
import type { ObjectFingerprint } from './fingerprint';
import { sharedTableSql } from './platform-schema';
import { FailureType, permanentFailure } from '../errors';
import { inTransaction } from './pg-transaction';
import { quotePgIdent, quotePgLiteral, quotePgQualified } from './quoting';

/**
 * Sum of the first 60 bits of md5 of each row text, modulo 2^64: order-independent, and a
 * duplicated row adds instead of cancelling (as XOR would). `numeric` cannot overflow.
 */
const rowHashSum = (rowText: string) => `(coalesce(sum(('x' || substr(md5(${rowText}), 1, 15))::bit(60)::bigint::numeric), 0) % 18446744073709551616)`;

/** The schema name with the organization id mapped out: `org_{org}`, `org_{org}__agents`. */
function schemaObjectName(map: OrganizationDataMap, schema: string): string {
  const main = map.postgres.mainSchema;
  const prefixLength = main.length - map.orgId.length;
  return `${main.slice(0, prefixLength)}${ORG_PLACEHOLDER}${schema.slice(main.length)}`;
}

/**
 * Fingerprints the organization's schemas (every table and sequence) and its rows of the shared
 * tables, all in one REPEATABLE READ snapshot so the objects are consistent with each other.
 * Shared rows are hashed with the key column replaced by `{org}`.
 * @param pool the platform database, or a scratch database holding a restored copy.
 * @param snapshotId an exported snapshot (`pg_export_snapshot()`) to fingerprint instead of "now":
 *   a backup fingerprints exactly the data it dumped.
 */
export async function fingerprintPostgres(pool: Pool, map: OrganizationDataMap, snapshotId?: string): Promise<ObjectFingerprint[]> {
  if (snapshotId !== undefined && !/^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$/i.test(snapshotId)) {
    throw permanentFailure(FailureType.InvalidInput, `snapshotId: not a PostgreSQL snapshot id: ${JSON.stringify(snapshotId.slice(0, 80))}`, { store: 'postgres', orgId: map.orgId });
  }
  return inTransaction(
    pool,
    async (client) => {
      // SET TRANSACTION SNAPSHOT takes no parameters; the id was checked above and is quoted anyway.
      if (snapshotId !== undefined) await client.query(`SET TRANSACTION SNAPSHOT ${quotePgLiteral(snapshotId)}`);
      const objects: ObjectFingerprint[] = [];
      const schemas = await listOrgSchemas(client, map);
      for (const relation of await listRelations(client, schemas)) {
        const name = `${schemaObjectName(map, relation.schema)}.${relation.name}`;
        const sql = quotePgQualified(relation.schema, relation.name);
        if (relation.kind === 'sequence') {
          // A restored sequence must continue where the original stopped: its state is content.
          const r = await client.query<{ hash: string }>(
            `SELECT ${rowHashSum(`last_value::text || ':' || is_called::text`)}::text AS hash FROM ${sql}`,
          );
          objects.push({ store: 'postgres', object: `sequence:${name}`, rows: 1, hash: formatHash(r.rows[0]?.hash ?? '0') });
        } else {
          const r = await client.query<{ rows: string; hash: string }>(`SELECT count(*)::text AS rows, ${rowHashSum('t::text')}::text AS hash FROM ${sql} t`);
          objects.push({ store: 'postgres', object: `schema:${name}`, rows: Number(r.rows[0]?.rows ?? 0), hash: formatHash(r.rows[0]?.hash ?? '0') });
        }
      }
      const present = await client.query<{ name: string }>(
        `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname || '.' || c.relname = ANY($1)`,
        [map.postgres.sharedTables.map((t) => `${t.schema}.${t.table}`)],
      );
      const existing = new Set(present.rows.map((r) => r.name));
      for (const table of map.postgres.sharedTables) {
        if (!existing.has(`${table.schema}.${table.table}`)) continue;
        // jsonb text has sorted keys, and the key column becomes `{org}`: a clone hashes the same.
        const r = await client.query<{ rows: string; hash: string }>(
          `SELECT count(*)::text AS rows, ${rowHashSum(`jsonb_set(to_jsonb(t), ARRAY[$2::text], to_jsonb($3::text))::text`)}::text AS hash
             FROM ${sharedTableSql(table)} t WHERE ${quotePgIdent(table.keyColumn)} = $1`,
          [map.orgId, table.keyColumn, ORG_PLACEHOLDER],
        );
        objects.push({ store: 'postgres', object: `shared:${table.schema}.${table.table}`, rows: Number(r.rows[0]?.rows ?? 0), hash: formatHash(r.rows[0]?.hash ?? '0') });
      }
      return objects;
    },
    'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
  );
}
